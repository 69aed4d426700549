"""SQL for authorization: memberships (the reads it needs), permission grants, API keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.models import ApiKey, Membership, PermissionGrant
from fabric_server.db.base import table_of
from fabric_server.db.writer import Tx

# --- memberships ----------------------------------------------------------------------------


async def member_role(session: AsyncSession, org_id: str, principal_id: str) -> str | None:
    return await session.scalar(
        select(Membership.role).where(
            Membership.organization_id == org_id,
            Membership.principal_id == principal_id,
            Membership.active.is_(True),
        )
    )


async def member_org_ids(session: AsyncSession, principal_id: str) -> list[str]:
    rows = await session.scalars(
        select(Membership.organization_id).where(
            Membership.principal_id == principal_id, Membership.active.is_(True)
        )
    )
    return list(rows)


# --- grants --------------------------------------------------------------------------------


async def grants_for(
    session: AsyncSession, principal_id: str, org_id: str
) -> list[PermissionGrant]:
    rows = await session.scalars(
        select(PermissionGrant).where(
            PermissionGrant.principal_id == principal_id,
            PermissionGrant.organization_id == org_id,
        )
    )
    return list(rows)


async def add_grant(session: AsyncSession, grant: PermissionGrant) -> PermissionGrant:
    session.add(grant)
    await session.flush()
    return grant


async def get_grant(session: AsyncSession, grant_id: str) -> PermissionGrant | None:
    return await session.get(PermissionGrant, grant_id)


async def list_grants(
    session: AsyncSession, org_id: str, principal_id: str | None
) -> list[PermissionGrant]:
    query = select(PermissionGrant).where(PermissionGrant.organization_id == org_id)
    if principal_id is not None:
        query = query.where(PermissionGrant.principal_id == principal_id)
    return list(await session.scalars(query.order_by(PermissionGrant.id)))


async def delete_grant(session: AsyncSession, grant_id: str) -> None:
    await session.execute(delete(PermissionGrant).where(PermissionGrant.id == grant_id))


async def delete_grants_of(session: AsyncSession, org_id: str, principal_id: str) -> int:
    """Delete every grant the principal holds in the organization; how many there were."""
    stmt = delete(PermissionGrant).where(
        PermissionGrant.organization_id == org_id, PermissionGrant.principal_id == principal_id
    )
    result: CursorResult[Any] = await session.execute(stmt)  # type: ignore[assignment]
    return result.rowcount


# --- API keys ------------------------------------------------------------------------------


async def add_key(session: AsyncSession, key: ApiKey) -> ApiKey:
    session.add(key)
    await session.flush()
    return key


async def get_key(session: AsyncSession, key_id: str) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def keys_with_prefix(session: AsyncSession, prefix: str) -> list[ApiKey]:
    return list(await session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)))


async def list_keys(session: AsyncSession, org_ids: list[str]) -> list[ApiKey]:
    rows = await session.scalars(
        select(ApiKey).where(ApiKey.organization_id.in_(org_ids)).order_by(ApiKey.id)
    )
    return list(rows)


async def live_keys_of(session: AsyncSession, org_id: str, creator_id: str) -> list[ApiKey]:
    """The enabled keys the principal made for the organization, row-locked until commit."""
    rows = await session.scalars(
        select(ApiKey)
        .where(
            ApiKey.organization_id == org_id,
            ApiKey.created_by == creator_id,
            ApiKey.disabled.is_(False),
        )
        .order_by(ApiKey.id)
        .with_for_update()
    )
    return list(rows)


async def live_keys_by(session: AsyncSession, creator_id: str) -> list[ApiKey]:
    """The enabled keys the principal made, in every organization, row-locked until commit."""
    rows = await session.scalars(
        select(ApiKey)
        .where(ApiKey.created_by == creator_id, ApiKey.disabled.is_(False))
        .order_by(ApiKey.id)
        .with_for_update()
    )
    return list(rows)


async def delete_key(session: AsyncSession, key_id: str) -> None:
    await session.execute(delete(ApiKey).where(ApiKey.id == key_id))


def touch_key_in(key_id: str, now: dt.datetime, every: float) -> Callable[[Tx], None]:
    """A group-commit unit setting `last_used_at` unless it was set less than `every`
    seconds ago."""
    stale = now - dt.timedelta(seconds=every)
    table = table_of(ApiKey)
    stmt = (
        update(table)
        .where(
            table.c.id == key_id, or_(table.c.last_used_at.is_(None), table.c.last_used_at < stale)
        )
        .values(last_used_at=now)
    )

    def touch(tx: Tx) -> None:
        tx.conn.execute(stmt)

    return touch
