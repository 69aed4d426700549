"""Mail over SMTP (stdlib `smtplib`, run in a worker thread after the transaction commits)."""

from __future__ import annotations

import asyncio
import functools
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.database import after_commit

log = logging.getLogger("fabric_server.mail")

Security = Literal["starttls", "tls", "none"]


class SmtpMailer:
    """Sends each mail after its transaction commits, without holding up the request.

    Delivery is best effort: a failure is logged (recipient and subject only — bodies carry
    sign-in links) and the user can ask for another mail. Bodies are never logged.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        user: str | None,
        password: str | None,
        sender: str,
        security: Security,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.sender = sender
        self.security = security
        self.timeout = timeout
        self._pending: set[asyncio.Task[None]] = set()

    async def send(self, session: AsyncSession, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain="fabric")
        message.set_content(body)
        after_commit(session, functools.partial(self._schedule, message))

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def _schedule(self, message: EmailMessage) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, message: EmailMessage) -> None:
        try:
            await asyncio.to_thread(self._send_now, message)
        except (OSError, smtplib.SMTPException) as exc:
            log.error(
                "mail to %s (%r) was not delivered: %s",
                message["To"],
                message["Subject"],
                type(exc).__name__,
            )
        else:
            log.info("mail to %s (%r) handed to %s", message["To"], message["Subject"], self.host)

    def _send_now(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)
