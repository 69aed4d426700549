"""API keys: `fab_live_<random>`, shown once, stored as a SHA-256 digest and a display prefix.

A key acts as its creator inside its one organization, with at most its scopes (RBAC action
strings; none means the creator's role there, evaluated at each use). Only someone with at
least the key's power manages it (`key_rules`). It stops working when it is disabled,
deleted, rotated away or expired, and when its creator is no longer an active member of the
organization.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access import repository
from fabric_server.access.key_rules import check_manageable, may_manage, scopes_for_new_key
from fabric_server.access.models import ApiKey
from fabric_server.access.policy import ALL_ACTIONS, canonical_action, is_known_action
from fabric_server.access.principal import Principal
from fabric_server.access.service import Access, WhenArchived
from fabric_server.db.database import Database
from fabric_server.db.types import utcnow
from fabric_server.db.versions import ACCESS, VersionedCache, Versions
from fabric_server.db.writer import Writer
from fabric_server.errors import (
    Forbidden,
    Unauthorized,
    Unprocessable,
    ValidationFailed,
)
from fabric_server.events.outbox import EventRecorder

KEY_PREFIX = "fab_live_"
_SHOWN = 8  # random characters kept in the display prefix
PREFIX_LENGTH = len(KEY_PREFIX) + _SHOWN


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def normalize_scopes(scopes: list[str] | None) -> list[str]:
    """Canonical, de-duplicated, sorted scopes; 400 for an unknown action."""
    result: set[str] = set()
    for scope in scopes or []:
        action = canonical_action(scope.strip())
        if action != ALL_ACTIONS and not is_known_action(action):
            raise ValidationFailed(
                f"Unknown scope {scope!r}: scopes are actions such as workflow.run, or *.",
                details={"errors": [{"path": "scopes", "in": "body", "message": "unknown"}]},
            )
        result.add(action)
    return sorted(result)


@dataclass(frozen=True)
class KeyStanding:
    """What verifying a key needs to know, detached from the database (cached)."""

    id: str
    organization_id: str
    created_by: str
    scopes: tuple[str, ...]
    disabled: bool
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    creator_is_member: bool


class ApiKeyService:
    def __init__(
        self,
        db: Database,
        access: Access,
        events: EventRecorder,
        *,
        writer: Writer,
        versions: Versions | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        touch_every_seconds: float = 60.0,
    ) -> None:
        self.db = db
        self.writer = writer
        self.access = access
        self.events = events
        self.clock = clock
        self.touch_every_seconds = touch_every_seconds
        # Keyed by the key's digest; exact thanks to the `access` version counter.
        self._keys: VersionedCache[str, KeyStanding | None] | None = (
            VersionedCache(versions, ACCESS) if versions is not None else None
        )
        self._touched: dict[str, dt.datetime] = {}

    async def create(
        self,
        session: AsyncSession,
        principal: Principal,
        org_id: str,
        name: str,
        scopes: list[str] | None,
        *,
        description: str | None = None,
        expires_in_days: int | None = None,
        expires_at: dt.datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret (returned only here). 403 for scopes beyond the
        creator's own actions in the organization, or beyond the scopes of the credential
        making it (which a key made without scopes inherits)."""
        await self.access.authorize(session, principal, org_id, "api_key.manage")
        if await repository.member_role(session, org_id, principal.id) is None:
            raise Forbidden("API keys are made by members of the organization.")
        wanted = scopes_for_new_key(principal, normalize_scopes(scopes))
        _, allowed = await self.access.effective_actions(session, principal, org_id)
        beyond = [s for s in wanted if s != ALL_ACTIONS and s not in allowed]
        if beyond:
            raise Forbidden(
                f"You cannot give a key scopes you do not hold: {', '.join(beyond)}.",
                details={"scopes": beyond},
            )
        secret = new_key()
        key = ApiKey(
            organization_id=org_id,
            created_by=principal.id,
            name=name,
            description=description,
            prefix=secret[:PREFIX_LENGTH],
            key_hash=key_digest(secret),
            scopes=wanted,
            expires_at=self._expiry(expires_in_days, expires_at),
            created_at=self.clock(),
        )
        await repository.add_key(session, key)
        await self._event(session, "api_key.created", key, principal, scopes=wanted)
        return key, secret

    async def list(
        self, session: AsyncSession, principal: Principal, org_id: str | None
    ) -> list[ApiKey]:
        """Keys of `org_id`, else of every organization where the caller manages keys —
        those the caller may manage (see `key_rules`)."""
        roles: dict[str, str] = {}
        if org_id is not None:
            roles[org_id] = await self.access.authorize(
                session, principal, org_id, "api_key.manage"
            )
        else:
            for org in await self.access.visible_org_ids(session, principal):
                decision = await self.access.decide(session, principal, org, "api_key.manage")
                if decision.allowed and decision.role is not None:
                    roles[org] = decision.role
        keys = await repository.list_keys(session, list(roles))
        return [
            key
            for key in keys
            if await may_manage(session, principal, roles[key.organization_id], key)
        ]

    async def get(
        self,
        session: AsyncSession,
        principal: Principal,
        key_id: str,
        *,
        when_archived: WhenArchived = "refuse_writes",
    ) -> ApiKey:
        found = await repository.get_key(session, key_id)
        key, role = await self.access.authorize_found(
            session,
            principal,
            found,
            "api_key.manage",
            missing=f"API key {key_id} was not found.",
            when_archived=when_archived,
        )
        await check_manageable(session, principal, role, key)
        return key

    async def rotate(
        self, session: AsyncSession, principal: Principal, key_id: str
    ) -> tuple[ApiKey, str]:
        """A new secret for the key; the old one stops working at once."""
        key = await self.get(session, principal, key_id)
        secret = new_key()
        key.prefix, key.key_hash = secret[:PREFIX_LENGTH], key_digest(secret)
        key.rotated_at = self.clock()
        await session.flush()
        await self._event(session, "api_key.rotated", key, principal)
        return key, secret

    async def disable(self, session: AsyncSession, principal: Principal, key_id: str) -> ApiKey:
        """Disable the key (also in an archived organization: it only takes access away)."""
        key = await self.get(session, principal, key_id, when_archived="allow")
        if not key.disabled:
            key.disabled = True
            await session.flush()
            await self._event(session, "api_key.disabled", key, principal)
        return key

    async def delete(self, session: AsyncSession, principal: Principal, key_id: str) -> None:
        """Delete the key (also in an archived organization: it only takes access away)."""
        key = await self.get(session, principal, key_id, when_archived="allow")
        await self._event(session, "api_key.deleted", key, principal)
        await repository.delete_key(session, key.id)

    async def verify_credentials(self, request: Request, token: str) -> Principal | None:
        """The API-key `CredentialVerifier`: any `fab_…` bearer token is judged here (and
        refused with 401 unless it is a live key); other tokens are left to the next one."""
        if not token.startswith("fab_"):
            return None
        now = self.clock()
        key = await self._standing(token)
        if key is None:
            raise Unauthorized("This API key is not valid.")
        if key.disabled:
            raise Unauthorized("This API key is disabled.")
        if key.expires_at is not None and key.expires_at <= now:
            raise Unauthorized("This API key has expired.")
        if not key.creator_is_member:
            raise Unauthorized("The creator of this API key is no longer a member.")
        stale = now - dt.timedelta(seconds=self.touch_every_seconds)
        last_used = max(
            (t for t in (key.last_used_at, self._touched.get(key.id)) if t is not None),
            default=None,
        )
        if last_used is None or last_used <= stale:
            self._touched[key.id] = now
            if len(self._touched) > 10_000:
                self._touched.clear()
            # Through the group-commit writer: this bookkeeping is not the request's change (it
            # must not take the request's audit row) and changes no cached answer.
            await self.writer.write(repository.touch_key_in(key.id, now, self.touch_every_seconds))
        return Principal(
            id=key.created_by,
            kind="api_key",
            organization_id=key.organization_id,
            scopes=key.scopes,
            api_key_id=key.id,
        )

    async def _standing(self, token: str) -> KeyStanding | None:
        async def load() -> KeyStanding | None:
            async with self.db.read() as session:
                key = await self._find(session, token)
                if key is None:
                    return None
                role = await repository.member_role(session, key.organization_id, key.created_by)
            return KeyStanding(
                id=key.id,
                organization_id=key.organization_id,
                created_by=key.created_by,
                scopes=tuple(key.scopes),
                disabled=key.disabled,
                expires_at=key.expires_at,
                last_used_at=key.last_used_at,
                creator_is_member=role is not None,
            )

        if self._keys is None:
            return await load()
        return await self._keys.get(None, key_digest(token), load)

    async def _find(self, session: AsyncSession, token: str) -> ApiKey | None:
        digest = key_digest(token)
        found = None
        for key in await repository.keys_with_prefix(session, token[:PREFIX_LENGTH]):
            if hmac.compare_digest(key.key_hash, digest):
                found = key
        return found

    def _expiry(self, days: int | None, at: dt.datetime | None) -> dt.datetime | None:
        if days is not None and at is not None:
            raise ValidationFailed("Give expires_in_days or expires_at, not both.")
        if days is not None:
            return self.clock() + dt.timedelta(days=days)
        if at is None:
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        if at <= self.clock():
            raise Unprocessable(
                "expires_at must be in the future.",
                details={"errors": [{"path": "expires_at", "in": "body", "message": "past"}]},
            )
        return at

    async def _event(
        self,
        session: AsyncSession,
        kind: str,
        key: ApiKey,
        principal: Principal,
        **extra: object,
    ) -> None:
        payload = {"api_key_id": key.id, "name": key.name, "by": principal.id, **extra}
        await self.events.record(
            session, kind, organization_id=key.organization_id, payload=payload
        )
