"""SQL for the audit log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.audit.models import AuditLog


@dataclass(frozen=True)
class AuditFilter:
    organization_ids: Sequence[str] | None = None
    actor_id: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


async def page(
    session: AsyncSession, where: AuditFilter, *, limit: int, after_id: str | None
) -> list[AuditLog]:
    """Newest first, keyset-paginated on the time-ordered id."""
    query = select(AuditLog)
    if where.organization_ids is not None:
        query = query.where(AuditLog.organization_id.in_(list(where.organization_ids)))
    if where.actor_id is not None:
        query = query.where(AuditLog.actor_id == where.actor_id)
    if where.action is not None:
        query = query.where(AuditLog.action == where.action)
    if where.resource_type is not None:
        query = query.where(AuditLog.resource_type == where.resource_type)
    if where.resource_id is not None:
        query = query.where(AuditLog.resource_id == where.resource_id)
    if where.since is not None:
        query = query.where(AuditLog.created_at >= where.since)
    if where.until is not None:
        query = query.where(AuditLog.created_at < where.until)
    if after_id is not None:
        query = query.where(AuditLog.id < after_id)
    rows = await session.scalars(query.order_by(AuditLog.id.desc()).limit(limit))
    return list(rows)
