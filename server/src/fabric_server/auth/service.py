"""Email-and-password accounts: sign-up, sign-in with lockout, password change.

Failures that must still be recorded (a failed sign-in counts towards the lockout) are
*returned* as a `DomainError` rather than raised, so the caller commits the transaction
first and raises afterwards.
"""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.api.auth import Principal
from fabric_server.auth import repository
from fabric_server.auth.accounts import email_taken
from fabric_server.auth.core import AuthCore, ClientInfo, IssuedTokens
from fabric_server.auth.mailed import MailedTokens
from fabric_server.auth.passwords import lookup_email, normalize_email
from fabric_server.auth.sessions import Sessions
from fabric_server.db.models import User
from fabric_server.errors import Conflict, DomainError, RateLimited, Unauthorized

WRONG_CREDENTIALS = "Wrong email or password."


class AuthService:
    def __init__(self, core: AuthCore, sessions: Sessions, mailed: MailedTokens) -> None:
        self.core = core
        self.sessions = sessions
        self.mailed = mailed

    async def signup(
        self,
        session: AsyncSession,
        email: str,
        password: str,
        display_name: str | None,
        client: ClientInfo,
    ) -> IssuedTokens:
        """A new account with its personal organization, signed in; mails a verification
        link. 409 when the email is taken, 400 for an invalid email or a weak password."""
        address = normalize_email(email)
        self.core.passwords.check_policy(password)
        if await repository.user_by_email(session, address) is not None:
            # Checked again under the unique index on insert; this early check skips hashing.
            raise email_taken()
        user = await self.core.accounts.create(
            session,
            email=address,
            display_name=(display_name.strip() or None) if display_name else None,
            password_hash=await self.core.passwords.hash(password),
            email_verified=False,
            method="password",
        )
        await self.mailed.send_verification(session, user)
        return await self.sessions.open(session, user, "password", client)

    async def login(
        self, session: AsyncSession, email: str, password: str, client: ClientInfo
    ) -> IssuedTokens | DomainError:
        user = await repository.user_by_email(session, lookup_email(email))
        now = self.core.clock()
        if user is not None and user.locked_until is not None and user.locked_until > now:
            await self._failed(session, user.id, "locked", client)
            return _locked(user.locked_until - now)
        passwords = self.core.passwords
        # Unknown accounts are checked against a dummy hash: both take the same time.
        matched = await passwords.verify(user.password_hash if user else None, password)
        if user is None or user.password_hash is None or not matched:
            return await self._wrong_password(session, user, client)
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = await passwords.hash(password)
        return await self.sessions.signed_in(session, user, "password", client)

    async def change_password(
        self,
        session: AsyncSession,
        principal: Principal,
        current: str,
        new: str,
        client: ClientInfo,
    ) -> IssuedTokens | DomainError:
        """Check the current password, set the new one, sign out every session and open a
        fresh one for the caller."""
        user = await self.sessions.user_of(session, principal)
        self.core.passwords.check_policy(new, "new_password")
        now = self.core.clock()
        if user.locked_until is not None and user.locked_until > now:
            return _locked(user.locked_until - now)
        if user.password_hash is None:
            raise Conflict("This account has no password yet: use forgot-password to set one.")
        if not await self.core.passwords.verify(user.password_hash, current):
            return await self._wrong_password(session, user, client)
        user.password_hash = await self.core.passwords.hash(new)
        revoked = await self.sessions.revoke_all(session, user.id, "password_changed")
        await self.core.events.record(
            session,
            "auth.password.changed",
            organization_id=None,
            payload={"user_id": user.id, "sessions_revoked": revoked, "ip": client.ip},
        )
        return await self.sessions.open(session, user, "password", client)

    async def _wrong_password(
        self, session: AsyncSession, user: User | None, client: ClientInfo
    ) -> DomainError:
        if user is None:
            # The attempted address is not recorded: people type passwords into it.
            await self._failed(session, None, "unknown_account", client)
            return Unauthorized(WRONG_CREDENTIALS)
        failures = await repository.count_failed_login(session, user.id)
        await self._failed(session, user.id, "wrong_password", client)
        settings = self.core.settings
        if failures < settings.login_max_failures:
            return Unauthorized(WRONG_CREDENTIALS)
        lock = dt.timedelta(seconds=settings.login_lock_seconds)
        until = self.core.clock() + lock
        await repository.set_sign_in_state(session, user.id, locked_until=until, failed_logins=0)
        await self.core.events.record(
            session,
            "auth.locked",
            organization_id=None,
            payload={"user_id": user.id, "until": until.isoformat(), "ip": client.ip},
        )
        return _locked(lock)

    async def _failed(
        self, session: AsyncSession, user_id: str | None, reason: str, client: ClientInfo
    ) -> None:
        await self.core.events.record(
            session,
            "auth.login.failed",
            organization_id=None,
            payload={"user_id": user_id, "reason": reason, "ip": client.ip},
        )


def _locked(remaining: dt.timedelta) -> RateLimited:
    seconds = max(1, math.ceil(remaining.total_seconds()))
    return RateLimited(
        f"Too many failed sign-ins: this account is locked for {seconds} more seconds.",
        retry_after=seconds,
    )
