"""Organization secrets: set (upsert), list names, delete — and `get` for the engine.

Values are sealed before they reach the session and opened only by `get`; they never go
into responses, events or logs.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access import repository as access_repository
from fabric_server.access.principal import Principal
from fabric_server.access.service import Access
from fabric_server.db.types import utcnow
from fabric_server.db.unique import create_or_find
from fabric_server.errors import NotFound
from fabric_server.events.outbox import EventRecorder
from fabric_server.secrets import repository
from fabric_server.secrets.crypto import MasterKey, SecretCipher
from fabric_server.secrets.models import OrgSecret

NAME_PATTERN = r"^[A-Z][A-Z0-9_]{0,127}$"
_NAME = re.compile(NAME_PATTERN)


class SecretStore:
    def __init__(self, master_key: MasterKey, access: Access, events: EventRecorder) -> None:
        self.master_key = master_key
        self.access = access
        self.events = events

    @property
    def cipher(self) -> SecretCipher:
        return self.master_key.cipher

    async def set(
        self, session: AsyncSession, principal: Principal, org_id: str, name: str, value: str
    ) -> tuple[OrgSecret, bool]:
        """Store `value` under `name` (replacing any previous one); True when it is new."""
        await self.access.authorize(session, principal, org_id, "secret.manage")
        nonce, sealed = self.cipher.seal(org_id, name, value)
        current = await repository.get(session, org_id, name)
        if current is not None:
            row, created = current, False
        else:
            new = OrgSecret(
                organization_id=org_id,
                name=name,
                nonce=nonce,
                ciphertext=sealed,
                key_id=self.cipher.key_id,
                created_by=principal.id,
                updated_by=principal.id,
            )
            # Set concurrently by another request: replace that one instead.
            row, created = await create_or_find(
                session,
                partial(repository.add, session, new),
                partial(repository.get, session, org_id, name),
            )
        if not created:
            row.nonce, row.ciphertext, row.key_id = nonce, sealed, self.cipher.key_id
            row.updated_at, row.updated_by = utcnow(), principal.id
            await session.flush()
        await self.events.record(
            session,
            "secret.set",
            organization_id=org_id,
            payload={"name": name, "created": created, "by": principal.id},
        )
        return row, created

    async def list(
        self, session: AsyncSession, principal: Principal, org_id: str
    ) -> list[OrgSecret]:
        await self.access.authorize(session, principal, org_id, "secret.manage")
        return await repository.names(session, org_id)

    async def delete(
        self, session: AsyncSession, principal: Principal, org_id: str, name: str
    ) -> None:
        await self.access.authorize(session, principal, org_id, "secret.manage")
        row = await repository.get(session, org_id, name)
        if row is None:
            raise NotFound(f"There is no secret named {name}.")
        await repository.remove(session, row.id)
        await self.events.record(
            session,
            "secret.deleted",
            organization_id=org_id,
            payload={"name": name, "by": principal.id},
        )

    async def get(self, session: AsyncSession, org_id: str, name: str) -> str | None:
        """The plain value of a secret, for the engine and providers (no authorization:
        callers act for the organization already). None when there is no such secret."""
        if not _NAME.match(name):
            return None
        row = await repository.get(session, org_id, name)
        if row is None:
            return None
        return self.cipher.open(org_id, name, row.nonce, row.ciphertext, row.key_id)

    async def endpoint_approved(
        self, session: AsyncSession, org_id: str, endpoint_name: str, key_name: str
    ) -> bool:
        """Whether the organization's `key_name` may be sent to the endpoint its
        `endpoint_name` secret names: true when whoever set the endpoint also set the key
        (they know it), or is an owner now (owners decide where keys go). An admin who may
        manage secrets but never read them cannot point a key set by someone else at a
        server of their choosing."""
        rows = await repository.get_many(session, org_id, [endpoint_name, key_name])
        authors = {row.name: row.updated_by or row.created_by for row in rows}
        endpoint_by, key_by = authors.get(endpoint_name), authors.get(key_name)
        if endpoint_name not in authors or key_name not in authors or endpoint_by == key_by:
            return True
        if endpoint_by is None:
            return False
        return await access_repository.member_role(session, org_id, endpoint_by) == "owner"

    async def get_many(
        self, session: AsyncSession, org_id: str, names: Collection[str]
    ) -> dict[str, str]:
        """The plain values of those of `names` the organization has, in one query."""
        wanted = [name for name in names if _NAME.match(name)]
        rows = await repository.get_many(session, org_id, wanted)
        return {
            row.name: self.cipher.open(org_id, row.name, row.nonce, row.ciphertext, row.key_id)
            for row in rows
        }
