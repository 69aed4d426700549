"""The one query a scrape runs: open work items by kind and status, and the oldest
runnable one of each kind."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.base import table_of
from fabric_server.engine.models import WorkItem
from fabric_server.engine.status import WorkStatus

_WORK = table_of(WorkItem)


@dataclass(frozen=True)
class QueueRow:
    kind: str
    status: str
    count: int
    oldest_runnable: dt.datetime | None


async def queue_rows(session: AsyncSession, now: dt.datetime) -> list[QueueRow]:
    """Queued and running items by kind and status; for queued ones, the earliest
    `available_at` that is already due (the item that has waited longest for a worker)."""
    runnable = case(
        (
            and_(_WORK.c.status == WorkStatus.QUEUED, _WORK.c.available_at <= now),
            _WORK.c.available_at,
        ),
        else_=None,
    )
    query = (
        select(_WORK.c.kind, _WORK.c.status, func.count(), func.min(runnable))
        .where(_WORK.c.status.in_([WorkStatus.QUEUED, WorkStatus.RUNNING]))
        .group_by(_WORK.c.kind, _WORK.c.status)
    )
    rows = (await session.execute(query)).all()
    return [QueueRow(str(kind), str(status), int(n), oldest) for kind, status, n, oldest in rows]
