"""Reading the event log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.events.models import Event


@dataclass(frozen=True)
class EventFilter:
    organization_ids: Sequence[str] | None = None
    job_id: str | None = None
    run_id: str | None = None
    kinds: Sequence[str] | None = None
    include_internal: bool = False


async def seq_of(session: AsyncSession, event_id: str) -> int | None:
    return await session.scalar(select(Event.seq).where(Event.id == event_id))


async def latest_seq(session: AsyncSession) -> int:
    value = await session.scalar(select(func.max(Event.seq)))
    return int(value or 0)


async def events_after(
    session: AsyncSession, after_seq: int, where: EventFilter, limit: int = 500
) -> list[Event]:
    query = select(Event).where(Event.seq > after_seq)
    if where.job_id is not None:
        query = query.where(Event.job_id == where.job_id)
    if where.run_id is not None:
        query = query.where(Event.run_id == where.run_id)
    if where.organization_ids is not None:
        query = query.where(Event.organization_id.in_(list(where.organization_ids)))
    if where.kinds:
        query = query.where(Event.kind.in_(list(where.kinds)))
    if not where.include_internal:
        query = query.where(
            (Event.node_key.is_(None)) | (Event.node_key.not_like("\\_fabric\\_%", escape="\\"))
        )
    rows = await session.scalars(query.order_by(Event.seq).limit(limit))
    return list(rows)
