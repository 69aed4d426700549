"""The mails accounts send. Links carry the token; bodies are never logged."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from fabric_server.mail import Mailer


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class AuthMail:
    def __init__(self, mailer: Mailer, *, public_url: str, link_url: str | None) -> None:
        self.mailer = mailer
        self.base = (link_url or f"{public_url.rstrip('/')}/v1/auth").rstrip("/")

    def link(self, page: str, token: str) -> str:
        return f"{self.base}/{page}?token={quote(token, safe='')}"

    async def verification(self, session: AsyncSession, to: str, token: str, ttl: int) -> None:
        body = (
            "Welcome to Fabric.\n\n"
            "Confirm your email address by opening this link:\n\n"
            f"  {self.link('verify', token)}\n\n"
            f"The link works once and expires in {_duration(ttl)}. "
            "If you did not sign up, ignore this mail.\n"
        )
        await self.mailer.send(session, to, "Confirm your email address", body)

    async def magic_link(self, session: AsyncSession, to: str, token: str, ttl: int) -> None:
        body = (
            "Sign in to Fabric by opening this link:\n\n"
            f"  {self.link('magic-link/verify', token)}\n\n"
            f"The link works once and expires in {_duration(ttl)}. "
            "If you did not ask to sign in, ignore this mail: nobody can use it without "
            "access to your mailbox.\n"
        )
        await self.mailer.send(session, to, "Your Fabric sign-in link", body)

    async def password_reset(self, session: AsyncSession, to: str, token: str, ttl: int) -> None:
        body = (
            "Someone (hopefully you) asked to reset your Fabric password.\n\n"
            "Choose a new password here:\n\n"
            f"  {self.link('reset-password', token)}\n\n"
            "API clients: send the token from that link with your new password to "
            'POST /v1/auth/reset-password as {"token", "new_password"}.\n\n'
            f"The link works once and expires in {_duration(ttl)}. Resetting signs out every "
            "session. If you did not ask for this, ignore this mail.\n"
        )
        await self.mailer.send(session, to, "Reset your Fabric password", body)
