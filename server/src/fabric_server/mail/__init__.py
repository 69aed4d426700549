"""Outgoing mail: SMTP when configured, otherwise the dev outbox."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.dev.mailer import OutboxMailer
from fabric_server.mail.smtp import SmtpMailer
from fabric_server.settings import Settings


class Mailer(Protocol):
    async def send(self, session: AsyncSession, to: str, subject: str, body: str) -> object:
        """Send a plain-text mail once `session`'s transaction commits (never on rollback)."""

    async def aclose(self) -> None:
        """Finish deliveries in flight (called at shutdown)."""


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
    return OutboxMailer(settings.data_dir / "outbox")
