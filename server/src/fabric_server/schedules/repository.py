"""SQL for schedules and their firing history.

A firing changes a schedule only while holding its row lock (`lock_due`, `lock`); on SQLite
`BEGIN IMMEDIATE` already serialises writers. The unique key on (schedule_id, scheduled_for)
stays the last word: even a writer that skipped the lock could not record an occurrence twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.schedules.models import Schedule, ScheduleFiring
from fabric_server.workflows.models import WorkflowRun

_FRESH = {"populate_existing": True}


async def get(session: AsyncSession, schedule_id: str) -> Schedule | None:
    return await session.get(Schedule, schedule_id)


async def lock(session: AsyncSession, schedule_id: str) -> Schedule | None:
    """The schedule, row-locked until the transaction ends (waits for other holders)."""
    query = select(Schedule).where(Schedule.id == schedule_id).with_for_update()
    return await session.scalar(query.execution_options(**_FRESH))


async def lock_due(
    session: AsyncSession, schedule_id: str, now: dt.datetime, *, skip_locked: bool
) -> Schedule | None:
    """The schedule if it is enabled and due, row-locked; None if not due, or (PostgreSQL)
    if another scheduler holds it right now: that one is firing it."""
    query = select(Schedule).where(
        Schedule.id == schedule_id,
        Schedule.enabled.is_(True),
        Schedule.next_run_at <= now,
    )
    query = query.with_for_update(skip_locked=skip_locked)
    return await session.scalar(query.execution_options(**_FRESH))


async def due_ids(session: AsyncSession, now: dt.datetime, limit: int) -> list[str]:
    rows = await session.scalars(
        select(Schedule.id)
        .where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
        .order_by(Schedule.next_run_at, Schedule.id)
        .limit(limit)
    )
    return list(rows)


async def earliest_next_run(session: AsyncSession) -> dt.datetime | None:
    value: dt.datetime | None = await session.scalar(
        select(func.min(Schedule.next_run_at)).where(Schedule.enabled.is_(True))
    )
    return value


async def of_definition(session: AsyncSession, definition_id: str) -> list[Schedule]:
    rows = await session.scalars(
        select(Schedule)
        .where(Schedule.workflow_definition_id == definition_id)
        .order_by(Schedule.id)
    )
    return list(rows)


async def recorded_occurrences(
    session: AsyncSession, schedule_id: str, instants: Sequence[dt.datetime]
) -> set[dt.datetime]:
    """Which of these cron occurrences already have a history row."""
    if not instants:
        return set()
    rows = await session.scalars(
        select(ScheduleFiring.scheduled_for).where(
            ScheduleFiring.schedule_id == schedule_id,
            ScheduleFiring.scheduled_for.in_(list(instants)),
        )
    )
    return {row for row in rows if row is not None}


async def history_page(
    session: AsyncSession, schedule_id: str, *, limit: int, before_sequence: int | None
) -> list[tuple[ScheduleFiring, str | None]]:
    """Newest first, each with its run's current status (None for skipped occurrences)."""
    query = (
        select(ScheduleFiring, WorkflowRun.status)
        .outerjoin(WorkflowRun, WorkflowRun.id == ScheduleFiring.run_id)
        .where(ScheduleFiring.schedule_id == schedule_id)
    )
    if before_sequence is not None:
        query = query.where(ScheduleFiring.sequence < before_sequence)
    rows = await session.execute(query.order_by(ScheduleFiring.sequence.desc()).limit(limit))
    return [(firing, status) for firing, status in rows]


async def firing_sequence(session: AsyncSession, schedule_id: str, firing_id: str) -> int | None:
    value: int | None = await session.scalar(
        select(ScheduleFiring.sequence).where(
            ScheduleFiring.id == firing_id, ScheduleFiring.schedule_id == schedule_id
        )
    )
    return value


async def schedules_with_held_runs(session: AsyncSession) -> list[str]:
    rows = await session.scalars(
        select(ScheduleFiring.schedule_id).where(ScheduleFiring.held.is_(True)).distinct()
    )
    return list(rows)


async def held_firings(session: AsyncSession, schedule_id: str) -> list[ScheduleFiring]:
    """Runs waiting their turn, oldest first."""
    rows = await session.scalars(
        select(ScheduleFiring)
        .where(ScheduleFiring.schedule_id == schedule_id, ScheduleFiring.held.is_(True))
        .order_by(ScheduleFiring.sequence)
        .execution_options(**_FRESH)
    )
    return list(rows)


async def run_before(session: AsyncSession, schedule_id: str, sequence: int) -> WorkflowRun | None:
    """The latest run this schedule released before firing number `sequence`."""
    run_id = await session.scalar(
        select(ScheduleFiring.run_id)
        .where(
            ScheduleFiring.schedule_id == schedule_id,
            ScheduleFiring.sequence < sequence,
            ScheduleFiring.run_id.is_not(None),
            ScheduleFiring.held.is_(False),
        )
        .order_by(ScheduleFiring.sequence.desc())
        .limit(1)
    )
    return None if run_id is None else await session.get(WorkflowRun, run_id)


async def delete_schedule(session: AsyncSession, schedule_id: str) -> None:
    # The foreign key cascades too; deleting the history explicitly keeps it dialect-proof.
    await session.execute(delete(ScheduleFiring).where(ScheduleFiring.schedule_id == schedule_id))
    await session.execute(delete(Schedule).where(Schedule.id == schedule_id))
