"""Sessions: opening them, rotating refresh tokens, signing out, and checking access tokens.

A session is one signed-in device. Access tokens (JWT, 2 h) carry its id (`sid`), and the
verifier checks the session row on every request, so revoking a session ends its access
tokens at once. Refresh tokens rotate inside the session; the session is their family.
"""

from __future__ import annotations

import datetime as dt

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.auth import repository
from fabric_server.auth.core import AuthCore, ClientInfo, IssuedTokens
from fabric_server.auth.models import AuthSession, User
from fabric_server.auth.tokens import new_opaque_token, token_digest
from fabric_server.db.versions import SESSIONS, VersionedCache, Versions
from fabric_server.errors import DomainError, Forbidden, NotFound, Unauthorized


class Sessions:
    def __init__(self, core: AuthCore) -> None:
        self.core = core
        # session id -> (user id, expiry) of a session not signed out, or None.
        self._live: VersionedCache[str, tuple[str, dt.datetime] | None] | None = None

    def use_cache(self, versions: Versions) -> None:
        """Keep live sessions in memory, exact thanks to the `sessions` version counter."""
        self._live = VersionedCache(versions, SESSIONS)

    async def open(
        self, session: AsyncSession, user: User, method: str, client: ClientInfo
    ) -> IssuedTokens:
        now = self.core.clock()
        row = await repository.add_session(
            session,
            AuthSession(
                user_id=user.id,
                method=method,
                ip=client.ip,
                user_agent=(client.user_agent or "")[:300] or None,
                created_at=now,
                expires_at=now + self._refresh_ttl,
            ),
        )
        return await self._issue(session, user, row.id, now)

    async def signed_in(
        self, session: AsyncSession, user: User, method: str, client: ClientInfo
    ) -> IssuedTokens:
        """Open a session after a successful sign-in of any kind, and record it.

        Proving who one is (password, mailbox, provider) also clears failed sign-ins.
        """
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = self.core.clock()
        issued = await self.open(session, user, method, client)
        await self.core.events.record(
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

    @property
    def _refresh_ttl(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.core.settings.refresh_token_ttl_seconds)

    async def _issue(
        self, session: AsyncSession, user: User, session_id: str, now: dt.datetime
    ) -> IssuedTokens:
        refresh = new_opaque_token()
        await repository.add_refresh_token(
            session, session_id, token_digest(refresh), now + self._refresh_ttl
        )
        ttl = self.core.settings.access_token_ttl_seconds
        access = self.core.signer.issue_access(user.id, session_id, now=now, ttl_seconds=ttl)
        return IssuedTokens(user, session_id, access, refresh, ttl)

    async def refresh(
        self, session: AsyncSession, refresh_token: str, client: ClientInfo
    ) -> IssuedTokens | DomainError:
        """Trade a refresh token for a new pair. A token presented twice means it leaked:
        the whole session (every token of the family) is revoked, and the error is
        returned so the caller commits that before answering 401."""
        invalid = Unauthorized("The refresh token is not valid; sign in again.")
        row = await repository.refresh_token_by_digest(session, token_digest(refresh_token))
        if row is None:
            return invalid
        now = self.core.clock()
        family = await repository.get_session(session, row.session_id)
        if family is None or family.revoked_at is not None or family.expires_at <= now:
            return invalid
        if row.used_at is not None or not await repository.use_refresh_token(session, row.id, now):
            await repository.revoke_session(session, family.id, now, "refresh_reuse")
            await self.core.events.record(
                session,
                "auth.refresh.reused",
                organization_id=None,
                payload={"user_id": family.user_id, "session_id": family.id, "ip": client.ip},
            )
            return Unauthorized(
                "This refresh token was already used: the session was signed out for safety."
            )
        user = await repository.get_user(session, family.user_id)
        if row.expires_at <= now or user is None:
            return invalid
        await repository.extend_session(session, family.id, now, now + self._refresh_ttl)
        return await self._issue(session, user, family.id, now)

    async def logout(self, session: AsyncSession, access_token: str | None) -> int:
        """Revoke the session an access token names (an expired token's too); 0 or 1."""
        if not access_token:
            return 0
        now = self.core.clock()
        claims = self.core.signer.read_access(access_token, now=now, allow_expired=True)
        if claims is None:
            return 0
        if not await repository.revoke_session(session, claims.session_id, now, "logout"):
            return 0
        await self.core.events.record(
            session,
            "auth.logout",
            organization_id=None,
            payload={"user_id": claims.user_id, "session_id": claims.session_id},
        )
        return 1

    async def logout_all(self, session: AsyncSession, principal: Principal) -> int:
        user = await self.user_of(session, principal)
        now = self.core.clock()
        count = await repository.revoke_user_sessions(session, user.id, now, "logout_all")
        await self.core.events.record(
            session,
            "auth.logout",
            organization_id=None,
            payload={"user_id": user.id, "all_sessions": True, "revoked": count},
        )
        return count

    async def holder_of(self, session: AsyncSession, access_token: str | None) -> str | None:
        """The user whose live session issued `access_token` (even an expired token: its
        signature still proves it came from that session), else None."""
        if not access_token or access_token.startswith("fab_"):
            return None
        now = self.core.clock()
        claims = self.core.signer.read_access(access_token, now=now, allow_expired=True)
        if claims is None:
            return None
        row = await repository.get_session(session, claims.session_id)
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        return row.user_id if row.user_id == claims.user_id else None

    async def revoke_all(self, session: AsyncSession, user_id: str, reason: str) -> int:
        return await repository.revoke_user_sessions(session, user_id, self.core.clock(), reason)

    async def user_of(self, session: AsyncSession, principal: Principal) -> User:
        """The account of the caller; 403 for API keys, 404 for principals without one."""
        if principal.kind == "api_key":
            raise Forbidden("This needs a user's credentials, not an API key.")
        user = await repository.get_user(session, principal.id)
        if user is None:
            raise NotFound("There is no account for this principal.")
        return user

    async def verify_credentials(self, request: Request, token: str) -> Principal | None:
        """The access-token `CredentialVerifier`: a well-signed, unexpired JWT whose session
        is live. API keys (`fab_…`) are left to their own verifier."""
        if token.startswith("fab_"):
            return None
        now = self.core.clock()
        claims = self.core.signer.read_access(token, now=now)
        if claims is None:
            return None
        live = await self._session(claims.session_id)
        if live is None or live[0] != claims.user_id or live[1] <= now:
            return None
        return Principal(id=live[0], kind="user")

    async def _session(self, session_id: str) -> tuple[str, dt.datetime] | None:
        async def load() -> tuple[str, dt.datetime] | None:
            async with self.core.db.read() as session:
                return await repository.open_session(session, session_id)

        if self._live is None:
            return await load()
        return await self._live.get(None, session_id, load)
