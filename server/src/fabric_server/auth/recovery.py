"""Mailed-link flows: passwordless sign-in, password recovery, email verification.

Requests that take an email address answer the same way whether or not an account exists
(no account enumeration): unknown addresses simply get no mail. Magic links never create
accounts — signing up stays an explicit step.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.auth import repository
from fabric_server.auth.passwords import lookup_email
from fabric_server.auth.service import (
    PURPOSE_MAGIC_LINK,
    PURPOSE_RESET,
    PURPOSE_VERIFY,
    AuthService,
    ClientInfo,
    IssuedTokens,
)
from fabric_server.auth.tokens import token_digest
from fabric_server.db.models import User
from fabric_server.errors import Unauthorized


class Recovery:
    def __init__(self, auth: AuthService) -> None:
        self.auth = auth
        self.settings = auth.settings

    async def _account(self, session: AsyncSession, email: str) -> User | None:
        return await repository.user_by_email(session, lookup_email(email))

    # --- passwordless sign-in --------------------------------------------------------------

    async def request_magic_link(self, session: AsyncSession, email: str) -> None:
        user = await self._account(session, email)
        if user is None or user.email is None:
            return
        ttl = self.settings.magic_link_ttl_seconds
        token = await self.auth.issue_one_time_token(session, user, PURPOSE_MAGIC_LINK, ttl)
        await self.auth.mail.magic_link(session, user.email, token, ttl)

    async def finish_magic_link(
        self, session: AsyncSession, token: str, client: ClientInfo
    ) -> IssuedTokens:
        user = await self.auth.consume_one_time_token(session, token, PURPOSE_MAGIC_LINK)
        user.email_verified = True  # the link reached the mailbox
        return await self.auth.signed_in(session, user, "magic_link", client)

    # --- password recovery -----------------------------------------------------------------

    async def forgot_password(self, session: AsyncSession, email: str) -> None:
        user = await self._account(session, email)
        if user is None or user.email is None:
            return
        ttl = self.settings.reset_token_ttl_seconds
        token = await self.auth.issue_one_time_token(session, user, PURPOSE_RESET, ttl)
        await self.auth.mail.password_reset(session, user.email, token, ttl)

    async def check_reset_token(self, session: AsyncSession, token: str) -> dt.datetime:
        """When a reset token expires; 401 when it is not usable. Does not use it up."""
        row = await repository.usable_one_time_token(
            session, token_digest(token), PURPOSE_RESET, self.auth.clock()
        )
        if row is None:
            raise Unauthorized("This link is invalid, has expired or was already used.")
        return row.expires_at

    async def reset_password(
        self, session: AsyncSession, token: str, new_password: str, client: ClientInfo
    ) -> int:
        """Set a new password with a mailed token; every session is signed out. Returns how
        many sessions were revoked."""
        # Policy first: a rejected password must not use the token up.
        self.auth.passwords.check_policy(new_password, "new_password")
        user = await self.auth.consume_one_time_token(session, token, PURPOSE_RESET)
        user.password_hash = await self.auth.passwords.hash(new_password)
        user.failed_logins = 0
        user.locked_until = None
        user.email_verified = True
        revoked = await repository.revoke_user_sessions(
            session, user.id, self.auth.clock(), "password_reset"
        )
        await self.auth.events.record(
            session,
            "auth.password.reset",
            organization_id=None,
            payload={"user_id": user.id, "sessions_revoked": revoked, "ip": client.ip},
        )
        return revoked

    # --- email verification ----------------------------------------------------------------

    async def verify_email(self, session: AsyncSession, token: str) -> User:
        user = await self.auth.consume_one_time_token(session, token, PURPOSE_VERIFY)
        if not user.email_verified:
            user.email_verified = True
            await self.auth.events.record(
                session, "auth.email.verified", organization_id=None, payload={"user_id": user.id}
            )
        return user

    async def resend_verification(self, session: AsyncSession, email: str) -> None:
        user = await self._account(session, email)
        if user is not None:
            await self.auth.send_verification(session, user)
