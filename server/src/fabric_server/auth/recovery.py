"""Mailed-link flows: passwordless sign-in, password recovery, email verification.

Requests that take an email address answer the same way whether or not an account exists
(no account enumeration): unknown addresses simply get no mail. Magic links never create
accounts — signing up stays an explicit step.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.auth import repository, throttle
from fabric_server.auth.claim import AddressProof
from fabric_server.auth.core import (
    PURPOSE_MAGIC_LINK,
    PURPOSE_RESET,
    PURPOSE_VERIFY,
    AuthCore,
    ClientInfo,
    IssuedTokens,
)
from fabric_server.auth.mailed import MailedTokens
from fabric_server.auth.models import User
from fabric_server.auth.passwords import lookup_email
from fabric_server.auth.sessions import Sessions


class Recovery:
    """Each mailed link proves control of the mailbox: on an account that had not proven it
    yet, following one ends whatever was set up before (see `AddressProof`). `holder` is the
    user of the live session a request came with, if any."""

    def __init__(
        self, core: AuthCore, sessions: Sessions, mailed: MailedTokens, proof: AddressProof
    ) -> None:
        self.core = core
        self.settings = core.settings
        self.sessions = sessions
        self.mailed = mailed
        self.proof = proof

    async def _account(self, session: AsyncSession, email: str) -> User | None:
        return await repository.user_by_email(session, lookup_email(email))

    # --- passwordless sign-in --------------------------------------------------------------

    async def request_magic_link(self, session: AsyncSession, email: str) -> None:
        user = await self._account(session, email)
        if user is None or user.email is None:
            return
        ttl = self.settings.magic_link_ttl_seconds
        token = await self.mailed.issue(session, user, PURPOSE_MAGIC_LINK, ttl)
        await self.core.mail.magic_link(session, user.email, token, ttl)

    async def finish_magic_link(
        self, session: AsyncSession, token: str, client: ClientInfo, holder: str | None = None
    ) -> IssuedTokens:
        user = await self.mailed.consume(session, token, PURPOSE_MAGIC_LINK)
        await self.proof.proven(session, user, "magic_link", holder=holder)
        await throttle.unlock_everywhere(session, user.email)
        return await self.sessions.signed_in(session, user, "magic_link", client)

    # --- password recovery -----------------------------------------------------------------

    async def forgot_password(self, session: AsyncSession, email: str) -> None:
        user = await self._account(session, email)
        if user is None or user.email is None:
            return
        ttl = self.settings.reset_token_ttl_seconds
        token = await self.mailed.issue(session, user, PURPOSE_RESET, ttl)
        await self.core.mail.password_reset(session, user.email, token, ttl)

    async def check_reset_token(self, session: AsyncSession, token: str) -> dt.datetime:
        """When a reset token expires; 401 when it is not usable. Does not use it up."""
        return await self.mailed.peek(session, token, PURPOSE_RESET)

    async def reset_password(
        self,
        session: AsyncSession,
        token: str,
        new_password: str,
        client: ClientInfo,
        holder: str | None = None,
    ) -> int:
        """Set a new password with a mailed token; every session is signed out. Returns how
        many sessions were revoked."""
        # Policy first: a rejected password must not use the token up.
        self.core.passwords.check_policy(new_password, "new_password")
        user = await self.mailed.consume(session, token, PURPOSE_RESET)
        await self.proof.proven(session, user, "password_reset", holder=holder)
        user.password_hash = await self.core.passwords.hash(new_password)
        user.failed_logins = 0
        user.locked_until = None
        await throttle.unlock_everywhere(session, user.email)
        revoked = await self.sessions.revoke_all(session, user.id, "password_reset")
        await self.core.events.record(
            session,
            "auth.password.reset",
            organization_id=None,
            payload={"user_id": user.id, "sessions_revoked": revoked, "ip": client.ip},
        )
        return revoked

    # --- email verification ----------------------------------------------------------------

    async def verify_email(
        self, session: AsyncSession, token: str, holder: str | None = None
    ) -> User:
        user = await self.mailed.consume(session, token, PURPOSE_VERIFY)
        if not user.email_verified:
            await self.proof.proven(session, user, "verification", holder=holder)
            await self.core.events.record(
                session, "auth.email.verified", organization_id=None, payload={"user_id": user.id}
            )
        return user

    async def resend_verification(self, session: AsyncSession, email: str) -> None:
        user = await self._account(session, email)
        if user is not None:
            await self.mailed.send_verification(session, user)
