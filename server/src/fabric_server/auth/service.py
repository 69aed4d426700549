"""Sign-up, sign-in and sessions: the business rules; no HTTP here.

Failures that must still be recorded (a failed sign-in counts towards the lockout, a reused
refresh token revokes its session) are *returned* as a `DomainError` rather than raised, so
the caller commits the transaction first and raises afterwards.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.api.auth import Principal
from fabric_server.auth import repository
from fabric_server.auth.accounts import Accounts, email_taken
from fabric_server.auth.mail import AuthMail
from fabric_server.auth.models import AuthSession
from fabric_server.auth.passwords import Passwords, lookup_email, normalize_email
from fabric_server.auth.ratelimit import SlidingWindowLimiter
from fabric_server.auth.tokens import (
    TokenSigner,
    load_signing_secret,
    new_opaque_token,
    token_digest,
)
from fabric_server.db.database import Database
from fabric_server.db.models import User
from fabric_server.db.types import utcnow
from fabric_server.errors import (
    BadRequest,
    DomainError,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
)
from fabric_server.events.outbox import EventRecorder
from fabric_server.mail import Mailer
from fabric_server.settings import Settings

PURPOSE_VERIFY = "verify_email"
PURPOSE_MAGIC_LINK = "magic_link"
PURPOSE_RESET = "password_reset"


@dataclass(frozen=True)
class ClientInfo:
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class IssuedTokens:
    user: User
    session_id: str
    access_token: str
    refresh_token: str
    expires_in: int


class AuthService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        events: EventRecorder,
        mailer: Mailer,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.db = db
        self.events = events
        self.clock = clock
        self.passwords = Passwords(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            min_length=settings.password_min_length,
            require_classes=settings.password_require_classes,
        )
        self.mail = AuthMail(
            mailer, public_url=settings.public_url, link_url=settings.auth_link_url
        )
        self.limiter = SlidingWindowLimiter(
            settings.auth_rate_limit, settings.auth_rate_window_seconds
        )
        self.accounts = Accounts(events, dev_mode=settings.is_dev)
        self._signer: TokenSigner | None = None

    def start(self) -> None:
        """Load (in dev mode: create) the signing secret. Called when the server starts."""
        self._signer = TokenSigner(load_signing_secret(self.settings))

    @property
    def signer(self) -> TokenSigner:
        if self._signer is None:
            raise RuntimeError("the auth service was not started")
        return self._signer

    # --- sign-up and sign-in ---------------------------------------------------------------

    async def signup(
        self,
        session: AsyncSession,
        email: str,
        password: str,
        display_name: str | None,
        client: ClientInfo,
    ) -> IssuedTokens:
        address = normalize_email(email)
        self.passwords.check_policy(password)
        if await repository.user_by_email(session, address) is not None:
            # Checked again under the unique index on insert; this early check skips hashing.
            raise email_taken()
        user = await self.accounts.create(
            session,
            email=address,
            display_name=display_name.strip() if display_name else None,
            password_hash=await self.passwords.hash(password),
            email_verified=False,
            method="password",
        )
        await self.send_verification(session, user)
        return await self.open_session(session, user, "password", client)

    async def login(
        self, session: AsyncSession, email: str, password: str, client: ClientInfo
    ) -> IssuedTokens | DomainError:
        user = await repository.user_by_email(session, lookup_email(email))
        now = self.clock()
        if user is not None and user.locked_until is not None and user.locked_until > now:
            await self._failed(session, user.id, "locked", client)
            return _locked(user.locked_until - now)
        matched = await self.passwords.verify(user.password_hash if user else None, password)
        if user is None or not matched:
            return await self._wrong_password(session, user, client)
        assert user.password_hash is not None
        if self.passwords.needs_rehash(user.password_hash):
            user.password_hash = await self.passwords.hash(password)
        return await self.signed_in(session, user, "password", client)

    async def signed_in(
        self, session: AsyncSession, user: User, method: str, client: ClientInfo
    ) -> IssuedTokens:
        """Open a session after a successful sign-in of any kind, and record it."""
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = self.clock()
        issued = await self.open_session(session, user, method, client)
        await self.events.record(
            session,
            "auth.login.succeeded",
            organization_id=None,
            payload={
                "user_id": user.id,
                "session_id": issued.session_id,
                "method": method,
                "ip": client.ip,
            },
        )
        return issued

    async def _wrong_password(
        self, session: AsyncSession, user: User | None, client: ClientInfo
    ) -> DomainError:
        if user is None:
            # The attempted address is not recorded: people type passwords into it.
            await self._failed(session, None, "unknown_account", client)
            return Unauthorized("Wrong email or password.")
        failures = await repository.count_failed_login(session, user.id)
        await self._failed(session, user.id, "wrong_password", client)
        if failures < self.settings.login_max_failures:
            return Unauthorized("Wrong email or password.")
        lock = dt.timedelta(seconds=self.settings.login_lock_seconds)
        until = self.clock() + lock
        await repository.set_sign_in_state(session, user.id, locked_until=until, failed_logins=0)
        await self.events.record(
            session,
            "auth.locked",
            organization_id=None,
            payload={"user_id": user.id, "until": until.isoformat(), "ip": client.ip},
        )
        return _locked(lock)

    async def _failed(
        self, session: AsyncSession, user_id: str | None, reason: str, client: ClientInfo
    ) -> None:
        await self.events.record(
            session,
            "auth.login.failed",
            organization_id=None,
            payload={"user_id": user_id, "reason": reason, "ip": client.ip},
        )

    # --- sessions ---------------------------------------------------------------------------

    async def open_session(
        self, session: AsyncSession, user: User, method: str, client: ClientInfo
    ) -> IssuedTokens:
        now = self.clock()
        row = await repository.add_session(
            session,
            AuthSession(
                user_id=user.id,
                method=method,
                ip=client.ip,
                user_agent=(client.user_agent or "")[:300] or None,
                created_at=now,
                expires_at=now + dt.timedelta(seconds=self.settings.refresh_token_ttl_seconds),
            ),
        )
        return await self._issue(session, user, row.id, now)

    async def _issue(
        self, session: AsyncSession, user: User, session_id: str, now: dt.datetime
    ) -> IssuedTokens:
        refresh = new_opaque_token()
        expires_at = now + dt.timedelta(seconds=self.settings.refresh_token_ttl_seconds)
        await repository.add_refresh_token(session, session_id, token_digest(refresh), expires_at)
        ttl = self.settings.access_token_ttl_seconds
        access = self.signer.issue_access(user.id, session_id, now=now, ttl_seconds=ttl)
        return IssuedTokens(user, session_id, access, refresh, ttl)

    async def refresh(
        self, session: AsyncSession, refresh_token: str, client: ClientInfo
    ) -> IssuedTokens | DomainError:
        """Trade a refresh token for a new pair. A token presented twice means it leaked:
        the whole session (every token of the family) is revoked."""
        invalid = Unauthorized("The refresh token is not valid; sign in again.")
        row = await repository.refresh_token_by_digest(session, token_digest(refresh_token))
        if row is None:
            return invalid
        now = self.clock()
        family = await repository.get_session(session, row.session_id)
        if family is None or family.revoked_at is not None or family.expires_at <= now:
            return invalid
        if row.used_at is not None or not await repository.use_refresh_token(session, row.id, now):
            await repository.revoke_session(session, family.id, now, "refresh_reuse")
            await self.events.record(
                session,
                "auth.refresh.reused",
                organization_id=None,
                payload={"user_id": family.user_id, "session_id": family.id, "ip": client.ip},
            )
            return Unauthorized(
                "This refresh token was already used: the session was signed out for safety."
            )
        if row.expires_at <= now:
            return invalid
        user = await repository.get_user(session, family.user_id)
        if user is None:
            return invalid
        expires_at = now + dt.timedelta(seconds=self.settings.refresh_token_ttl_seconds)
        await repository.extend_session(session, family.id, now, expires_at)
        return await self._issue(session, user, family.id, now)

    async def logout(self, session: AsyncSession, access_token: str | None) -> int:
        """Revoke the session an access token belongs to (even an expired token's)."""
        if not access_token:
            return 0
        claims = self.signer.read_access(access_token, now=self.clock(), allow_expired=True)
        if claims is None:
            return 0
        if not await repository.revoke_session(session, claims.session_id, self.clock(), "logout"):
            return 0
        await self.events.record(
            session,
            "auth.logout",
            organization_id=None,
            payload={"user_id": claims.user_id, "session_id": claims.session_id},
        )
        return 1

    async def logout_all(self, session: AsyncSession, principal: Principal) -> int:
        user = await self._user_of(session, principal)
        count = await repository.revoke_user_sessions(session, user.id, self.clock(), "logout_all")
        await self.events.record(
            session,
            "auth.logout",
            organization_id=None,
            payload={"user_id": user.id, "all_sessions": True, "revoked": count},
        )
        return count

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
        user = await self._user_of(session, principal)
        self.passwords.check_policy(new, "new_password")
        now = self.clock()
        if user.locked_until is not None and user.locked_until > now:
            return _locked(user.locked_until - now)
        if user.password_hash is None:
            raise BadRequest("This account has no password yet: use forgot-password to set one.")
        if not await self.passwords.verify(user.password_hash, current):
            return await self._wrong_password(session, user, client)
        user.password_hash = await self.passwords.hash(new)
        revoked = await repository.revoke_user_sessions(session, user.id, now, "password_changed")
        await self.events.record(
            session,
            "auth.password.changed",
            organization_id=None,
            payload={"user_id": user.id, "sessions_revoked": revoked, "ip": client.ip},
        )
        return await self.open_session(session, user, "password", client)

    async def _user_of(self, session: AsyncSession, principal: Principal) -> User:
        if principal.kind == "api_key":
            raise Forbidden("This needs a user's credentials, not an API key.")
        user = await repository.get_user(session, principal.id)
        if user is None:
            raise NotFound("There is no account for this principal.")
        return user

    # --- credentials ------------------------------------------------------------------------

    async def verify_credentials(self, request: Request, token: str) -> Principal | None:
        """The access-token `CredentialVerifier`: a valid JWT whose session is still live.

        API keys (`fab_…`) are left to their own verifier.
        """
        if token.startswith("fab_"):
            return None
        now = self.clock()
        claims = self.signer.read_access(token, now=now)
        if claims is None:
            return None
        async with self.db.read() as session:
            user_id = await repository.live_session_user(session, claims.session_id, now)
        if user_id is None or user_id != claims.user_id:
            return None
        return Principal(id=user_id, kind="user")

    # --- mailed tokens ----------------------------------------------------------------------

    async def issue_one_time_token(
        self, session: AsyncSession, user: User, purpose: str, ttl: int
    ) -> str:
        token = new_opaque_token()
        expires_at = self.clock() + dt.timedelta(seconds=ttl)
        await repository.replace_one_time_token(
            session, user.id, purpose, token_digest(token), expires_at
        )
        return token

    async def consume_one_time_token(self, session: AsyncSession, token: str, purpose: str) -> User:
        """The user a mailed token belongs to, marking it used; 401 when it is not usable."""
        now = self.clock()
        row = await repository.usable_one_time_token(session, token_digest(token), purpose, now)
        if row is None or not await repository.use_one_time_token(session, row.id, now):
            raise Unauthorized("This link is invalid, has expired or was already used.")
        user = await repository.get_user(session, row.user_id)
        if user is None:  # pragma: no cover - tokens are deleted with their user
            raise Unauthorized("This link is invalid, has expired or was already used.")
        return user

    async def send_verification(self, session: AsyncSession, user: User) -> None:
        if user.email is None or user.email_verified:
            return
        ttl = self.settings.verify_token_ttl_seconds
        token = await self.issue_one_time_token(session, user, PURPOSE_VERIFY, ttl)
        await self.mail.verification(session, user.email, token, ttl)


def _locked(remaining: dt.timedelta) -> RateLimited:
    seconds = max(1, math.ceil(remaining.total_seconds()))
    return RateLimited(
        f"Too many failed sign-ins: this account is locked for {seconds} more seconds.",
        retry_after=seconds,
    )
