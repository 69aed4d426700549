"""Outgoing mail: SMTP when configured, otherwise the dev outbox.

The dev outbox keeps every mail — sign-in, reset and invitation links included — in clear
text in the database and the data dir. Outside dev mode it is used only when explicitly
allowed (`FABRIC_DEV_OUTBOX=true`): without SMTP the API refuses to start, and mail is
discarded rather than stored.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.mail.outbox import OutboxMailer
from fabric_server.mail.smtp import SmtpMailer
from fabric_server.settings import Settings

log = logging.getLogger("fabric_server.mail")


class Mailer(Protocol):
    async def send(self, session: AsyncSession, to: str, subject: str, body: str) -> object:
        """Send a plain-text mail once `session`'s transaction commits (never on rollback)."""

    async def aclose(self) -> None:
        """Finish deliveries in flight (called at shutdown)."""


class DiscardingMailer:
    """Stores and sends nothing (a server without SMTP that may not keep an outbox)."""

    async def send(self, session: AsyncSession, to: str, subject: str, body: str) -> None:
        log.warning("mail to %s (%r) discarded: no SMTP server is configured", to, subject)

    async def aclose(self) -> None:
        """Nothing is in flight."""


def build_mailer(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            user=settings.smtp_user,
            password=settings.smtp_password,
            sender=settings.smtp_from,
            security=settings.smtp_security,
        )
    if not settings.dev_outbox_allowed:
        return DiscardingMailer()
    return OutboxMailer(settings.data_dir / "outbox")


def require_mail_delivery(settings: Settings) -> None:
    """Refuse to start an API that could not deliver mail safely (see
    `Settings.mail_delivery_problem`)."""
    problem = settings.mail_delivery_problem
    if problem is not None:
        raise RuntimeError(problem)
