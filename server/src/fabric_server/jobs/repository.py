"""SQL for jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, CursorResult, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.base import table_of
from fabric_server.jobs.models import Job
from fabric_server.jobs.status import JOB_TRANSITIONS, JobStatus
from fabric_server.usage.models import UsageRecord


async def get(session: AsyncSession, job_id: str) -> Job | None:
    return await session.get(Job, job_id)


async def organization_of(session: AsyncSession, job_id: str) -> str | None:
    """Resolver for permission checks on `job:<id>`."""
    job = await get(session, job_id)
    return None if job is None else job.organization_id


_JOBS = table_of(Job)
# The hot path's statements, built once so SQLAlchemy compiles each once.
INSERT = insert(_JOBS)
_BY_ID = select(_JOBS).where(_JOBS.c.id == bindparam("b_id"))
_BY_KEY = select(_JOBS).where(
    _JOBS.c.organization_id == bindparam("b_org"), _JOBS.c.idempotency_key == bindparam("b_key")
)
# Guarded like every job change: only from the statuses the transition table allows.
MARK_STARTED = (
    update(_JOBS)
    .where(
        _JOBS.c.id == bindparam("b_id"),
        _JOBS.c.status.in_(JOB_TRANSITIONS.sources(JobStatus.STARTED)),
    )
    .values(
        status=JobStatus.STARTED,
        started_at=bindparam("b_started"),
        attempts=bindparam("b_attempts"),
        updated_at=bindparam("b_now"),
    )
)
MARK_COMPLETED = (
    update(_JOBS)
    .where(
        _JOBS.c.id == bindparam("b_id"),
        _JOBS.c.status.in_(JOB_TRANSITIONS.sources(JobStatus.COMPLETED)),
    )
    .values(
        status=JobStatus.COMPLETED,
        output=bindparam("b_output"),
        error=None,
        completed_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
    )
)


def read_row(job_id: str) -> Callable[[Connection], dict[str, Any] | None]:
    """A read (for `Database.run_read`) of the job's row as a dict of its columns."""

    def read(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(_BY_ID, {"b_id": job_id}).mappings().first()
        return None if row is None else dict(row)

    return read


def read_by_key(org_id: str, key: str) -> Callable[[Connection], dict[str, Any] | None]:
    """A read of the organization's job created with idempotency key `key`."""

    def read(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(_BY_KEY, {"b_org": org_id, "b_key": key}).mappings().first()
        return None if row is None else dict(row)

    return read


def read_by_keys(
    keys: Sequence[tuple[str, str]],
) -> Callable[[Connection], dict[tuple[str, str], dict[str, Any]]]:
    """A read of the jobs created with these (organization, idempotency key) pairs."""

    def read(conn: Connection) -> dict[tuple[str, str], dict[str, Any]]:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for org_id in sorted({org for org, _ in keys}):
            wanted = [key for org, key in keys if org == org_id]
            query = select(_JOBS).where(
                _JOBS.c.organization_id == org_id, _JOBS.c.idempotency_key.in_(wanted)
            )
            for row in conn.execute(query).mappings():
                found[(org_id, row["idempotency_key"])] = dict(row)
        return found

    return read


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


def count_active(conn: Connection, org_id: str) -> int:
    """Jobs of the organization not finished yet (`InFlightLimit`)."""
    count = conn.scalar(
        select(func.count())
        .select_from(_JOBS)
        .where(
            _JOBS.c.organization_id == org_id,
            _JOBS.c.status.in_((JobStatus.PENDING, JobStatus.STARTED)),
        )
    )
    return int(count or 0)
