"""Email-and-password accounts: sign-up, sign-in with lockout, password change.

The lockout counts failures per account and client address (`throttle`): it stops guessing
from one place without locking the owner out, and treats unknown accounts like known ones.

Failures that must still be recorded (a failed sign-in counts towards the lockout) are
*returned* as a `DomainError` rather than raised, so the caller commits the transaction
first and raises afterwards.
"""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.auth import repository, throttle
from fabric_server.auth.accounts import email_taken
from fabric_server.auth.core import AuthCore, ClientInfo, IssuedTokens
from fabric_server.auth.mailed import MailedTokens
from fabric_server.auth.models import User
from fabric_server.auth.passwords import lookup_email, normalize_email
from fabric_server.auth.sessions import Sessions
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
        """Sign in with a password. Unknown accounts take the same path and time as known
        ones, and meet the same lock (per account and client address)."""
        user = await repository.user_by_email(session, lookup_email(email))
        now = self.core.clock()
        pair = throttle.account_key(email), throttle.address_of(client.ip)
        remaining = await throttle.lock_remaining(session, *pair, now)
        if remaining is not None:
            await self._failed(session, user.id if user else None, "locked", client)
            return _locked(remaining)
        passwords = self.core.passwords
        # Unknown accounts are checked against a dummy hash: both take the same time.
        matched = await passwords.verify(user.password_hash if user else None, password)
        if user is None or user.password_hash is None or not matched:
            return await self._wrong_password(session, user, pair, client)
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = await passwords.hash(password)
        await throttle.succeeded(session, *pair)
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
        pair = throttle.account_key(user.email or user.id), throttle.address_of(client.ip)
        remaining = await throttle.lock_remaining(session, *pair, self.core.clock())
        if remaining is not None:
            return _locked(remaining)
        if user.password_hash is None:
            raise Conflict("This account has no password yet: use forgot-password to set one.")
        if not await self.core.passwords.verify(user.password_hash, current):
            return await self._wrong_password(session, user, pair, client)
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
        self,
        session: AsyncSession,
        user: User | None,
        pair: tuple[str, str],
        client: ClientInfo,
    ) -> DomainError:
        # The attempted address of an unknown account is not recorded: people type
        # passwords into it.
        user_id = user.id if user else None
        await self._failed(
            session, user_id, "wrong_password" if user else "unknown_account", client
        )
        now = self.core.clock()
        lock = await throttle.count_failure(session, self.core.settings, *pair, now)
        if lock is None:
            return Unauthorized(WRONG_CREDENTIALS)
        await self.core.events.record(
            session,
            "auth.locked",
            organization_id=None,
            payload={"user_id": user_id, "until": (now + lock).isoformat(), "ip": client.ip},
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
        f"Too many failed sign-ins with this email from your address: signing in from here "
        f"is locked for {seconds} more seconds (a magic link or a password reset lifts it).",
        retry_after=seconds,
    )
