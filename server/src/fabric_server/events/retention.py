"""Event log retention: old events are deleted in small batches by a periodic task."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

from sqlalchemy import CursorResult, delete, select

from fabric_server.db.database import Database
from fabric_server.db.models import Event
from fabric_server.db.types import utcnow

log = logging.getLogger("fabric_server.events")
BATCH = 5000


async def prune_events(db: Database, older_than: dt.datetime) -> int:
    """Delete events created before `older_than`; returns how many were deleted."""
    total = 0
    while True:
        batch = select(Event.seq).where(Event.created_at < older_than).limit(BATCH)
        async with db.write() as session:
            result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
                delete(Event)
                .where(Event.seq.in_(batch.scalar_subquery()))
                .execution_options(synchronize_session=False)
            )
        total += result.rowcount
        if result.rowcount < BATCH:
            return total


async def retention_loop(
    db: Database, days: float, interval_seconds: float, stopping: asyncio.Event
) -> None:
    """Prune every interval until `stopping` is set; the first pass runs after a minute, so
    short-lived processes (tests, CLI runs) never start one. Safe with any number of processes
    doing the same."""
    first_delay = min(60.0, interval_seconds)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), first_delay)
    while not stopping.is_set():
        try:
            removed = await prune_events(db, utcnow() - dt.timedelta(days=days))
            if removed:
                log.info("pruned %d events older than %s days", removed, days)
        except Exception:
            log.exception("event retention failed; will retry")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval_seconds)
