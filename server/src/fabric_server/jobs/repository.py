"""SQL for jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.models import Job, UsageRecord
from fabric_server.jobs.status import JobStatus


async def get(session: AsyncSession, job_id: str) -> Job | None:
    return await session.get(Job, job_id)


async def by_idempotency_key(session: AsyncSession, org_id: str, key: str) -> Job | None:
    return await session.scalar(
        select(Job).where(Job.organization_id == org_id, Job.idempotency_key == key)
    )


async def page(
    session: AsyncSession,
    org_ids: Sequence[str],
    *,
    limit: int,
    after_id: str | None,
    status: JobStatus | None = None,
) -> list[Job]:
    """Newest first, keyset-paginated on the time-ordered id."""
    query = select(Job).where(Job.organization_id.in_(list(org_ids)))
    if status is not None:
        query = query.where(Job.status == status)
    if after_id is not None:
        query = query.where(Job.id < after_id)
    rows = await session.scalars(query.order_by(Job.id.desc()).limit(limit))
    return list(rows)


async def update_where(
    session: AsyncSession, job_id: str, statuses: Iterable[JobStatus], **values: Any
) -> bool:
    """Update the job only while its status is one of `statuses`; True when it was."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_(list(statuses)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    result: CursorResult[Any] = await session.execute(stmt)  # type: ignore[assignment]
    return result.rowcount == 1


async def usage_for_job(session: AsyncSession, job_id: str) -> list[UsageRecord]:
    rows = await session.scalars(
        select(UsageRecord).where(UsageRecord.job_id == job_id).order_by(UsageRecord.id)
    )
    return list(rows)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
