"""SQL for organization secrets."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.secrets.models import OrgSecret


async def get(session: AsyncSession, org_id: str, name: str) -> OrgSecret | None:
    return await session.scalar(
        select(OrgSecret).where(OrgSecret.organization_id == org_id, OrgSecret.name == name)
    )


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
