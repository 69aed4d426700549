"""SQL for organization secrets."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.secrets.models import OrgSecret


async def get(session: AsyncSession, org_id: str, name: str) -> OrgSecret | None:
    return await session.scalar(
        select(OrgSecret).where(OrgSecret.organization_id == org_id, OrgSecret.name == name)
    )


async def get_many(session: AsyncSession, org_id: str, names: Collection[str]) -> list[OrgSecret]:
    if not names:
        return []
    query = select(OrgSecret).where(
        OrgSecret.organization_id == org_id, OrgSecret.name.in_(sorted(names))
    )
    return list((await session.scalars(query)).all())


async def add(session: AsyncSession, row: OrgSecret) -> OrgSecret:
    """Insert a secret (flushed: a name already taken raises IntegrityError here)."""
    session.add(row)
    await session.flush()
    return row


async def names(session: AsyncSession, org_id: str) -> list[OrgSecret]:
    rows = await session.scalars(
        select(OrgSecret).where(OrgSecret.organization_id == org_id).order_by(OrgSecret.name)
    )
    return list(rows)


async def remove(session: AsyncSession, row_id: str) -> None:
    await session.execute(delete(OrgSecret).where(OrgSecret.id == row_id))


# ---- master key rotation


async def count_by_key(session: AsyncSession) -> dict[str, int]:
    """How many secrets each master key (by key id) sealed."""
    rows = await session.execute(select(OrgSecret.key_id, func.count()).group_by(OrgSecret.key_id))
    return {key_id: count for key_id, count in rows}


async def sealed_with(
    session: AsyncSession, key_ids: Collection[str], limit: int
) -> list[tuple[str, str]]:
    """(organization id, name) of up to `limit` secrets sealed with one of `key_ids`."""
    rows = await session.execute(
        select(OrgSecret.organization_id, OrgSecret.name)
        .where(OrgSecret.key_id.in_(key_ids))
        .order_by(OrgSecret.organization_id, OrgSecret.name)
        .limit(limit)
    )
    return [(org_id, name) for org_id, name in rows]


async def lock_sealed_with(
    session: AsyncSession, key_ids: Collection[str], after: str, limit: int
) -> list[OrgSecret]:
    """The next `limit` secrets by id after `after` that one of `key_ids` sealed, locked
    (`FOR NO KEY UPDATE` on PostgreSQL; on SQLite the write transaction excludes writers).
    A secret set again meanwhile no longer matches and is left alone."""
    rows = await session.scalars(
        select(OrgSecret)
        .where(OrgSecret.key_id.in_(key_ids), OrgSecret.id > after)
        .order_by(OrgSecret.id)
        .limit(limit)
        .with_for_update(key_share=True)
    )
    return list(rows)


async def reseal(
    session: AsyncSession, row_id: str, nonce: bytes, ciphertext: bytes, key_id: str
) -> None:
    """Store a new sealing of the same value; `updated_at` stays (the value did not change)."""
    await session.execute(
        update(OrgSecret)
        .where(OrgSecret.id == row_id)
        .values(nonce=nonce, ciphertext=ciphertext, key_id=key_id, updated_at=OrgSecret.updated_at)
        .execution_options(synchronize_session=False)
    )
