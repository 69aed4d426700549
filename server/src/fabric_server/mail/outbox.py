"""The dev outbox: without SMTP configured, mail is kept in a table and in files."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.mail.models import Mail
from fabric_server.storage import private_dir, private_file

log = logging.getLogger("fabric_server.mail")


class OutboxMailer:
    """Records each mail in the `mail_outbox` table and writes it under `<data_dir>/outbox/`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, session: AsyncSession, to: str, subject: str, body: str) -> Mail:
        mail = Mail(to_address=to, subject=subject, body=body)
        session.add(mail)
        await session.flush()
        path = private_file(private_dir(self.directory) / f"{mail.id}.eml")
        path.write_text(f"To: {to}\nSubject: {subject}\n\n{body}\n", encoding="utf-8")
        log.info("mail to %s (%r) written to the dev outbox: %s", to, subject, path)
        return mail

    async def aclose(self) -> None:
        """Nothing is in flight: outbox mail is written inside the transaction."""


async def list_outbox(session: AsyncSession, to: str | None, limit: int) -> list[Mail]:
    query = select(Mail)
    if to:
        query = query.where(Mail.to_address == to.strip().lower())
    rows = await session.scalars(query.order_by(Mail.id.desc()).limit(limit))
    return list(rows)
