"""The one way a job's status changes: a guarded update, then the change's event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.events.outbox import EventRecorder
from fabric_server.jobs import repository
from fabric_server.jobs.status import JOB_TRANSITIONS, JobStatus


async def move_job(
    session: AsyncSession,
    events: EventRecorder,
    job_id: str,
    organization_id: str,
    target: JobStatus,
    payload: dict[str, Any],
    *,
    before_event: Callable[[], Awaitable[None]] | None = None,
    **values: Any,
) -> bool:
    """Move the job to `target` with `values`, only from a status the transition table
    allows (the check is the UPDATE's WHERE clause, so concurrent workers cannot both move
    it); then record the change's event. `before_event` runs once the job moved, before the
    event (a row lock taken there must precede the event-order lock). True when it moved."""
    moved = await repository.update_where(
        session, job_id, JOB_TRANSITIONS.sources(target), status=target, **values
    )
    if moved:
        if before_event is not None:
            await before_event()
        kind = JOB_TRANSITIONS.event_into(target)
        assert kind is not None
        await events.record(
            session, kind, organization_id=organization_id, job_id=job_id, payload=payload
        )
    return moved
