"""Mailed one-time tokens (verification, magic link, reset): hashed, single-use, short-lived.

Each token has one purpose; a reset token cannot verify an email, and so on. Issuing a new
token for a (user, purpose) retires the previous one.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.auth import repository
from fabric_server.auth.core import PURPOSE_VERIFY, AuthCore
from fabric_server.auth.models import User
from fabric_server.auth.tokens import new_opaque_token, token_digest
from fabric_server.errors import Unauthorized

INVALID_LINK = "This link is invalid, has expired or was already used."


class MailedTokens:
    def __init__(self, core: AuthCore) -> None:
        self.core = core

    async def issue(self, session: AsyncSession, user: User, purpose: str, ttl: int) -> str:
        token = new_opaque_token()
        expires_at = self.core.clock() + dt.timedelta(seconds=ttl)
        await repository.replace_one_time_token(
            session, user.id, purpose, token_digest(token), expires_at
        )
        return token

    async def consume(self, session: AsyncSession, token: str, purpose: str) -> User:
        """The user a token belongs to, marking the token used; 401 when it is not usable."""
        now = self.core.clock()
        row = await repository.usable_one_time_token(session, token_digest(token), purpose, now)
        if row is None or not await repository.use_one_time_token(session, row.id, now):
            raise Unauthorized(INVALID_LINK)
        user = await repository.get_user(session, row.user_id)
        if user is None:  # pragma: no cover - tokens are deleted with their user
            raise Unauthorized(INVALID_LINK)
        return user

    async def peek(self, session: AsyncSession, token: str, purpose: str) -> dt.datetime:
        """When a usable token expires, without using it; 401 when it is not usable."""
        row = await repository.usable_one_time_token(
            session, token_digest(token), purpose, self.core.clock()
        )
        if row is None:
            raise Unauthorized(INVALID_LINK)
        return row.expires_at

    async def send_verification(self, session: AsyncSession, user: User) -> None:
        """Mail a verification link, unless the address is already verified."""
        if user.email is None or user.email_verified:
            return
        ttl = self.core.settings.verify_token_ttl_seconds
        token = await self.issue(session, user, PURPOSE_VERIFY, ttl)
        await self.core.mail.verification(session, user.email, token, ttl)
