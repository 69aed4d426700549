"""Retention: old history is deleted in small batches by one periodic task.

Each kind of history (events, webhook deliveries, spent credentials) is a `RetentionRule`:
how many days to keep and a function deleting what is older. Every batch is its own short
transaction. The list of rules is made in one place, `fabric_server.runtime.retention_rules`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.database import Database
from fabric_server.db.types import utcnow
from fabric_server.events.models import Event

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


DeleteOlder = Callable[[AsyncSession, dt.datetime, int], Awaitable[int]]
"""A repository function: `(session, older_than, limit)` deletes at most `limit` rows that
ended before `older_than` and returns how many it deleted."""


async def delete_in_batches(
    db: Database, delete_older: DeleteOlder, older_than: dt.datetime, batch: int
) -> int:
    """Call `delete_older(session, older_than, batch)`, each call in its own write
    transaction, until it deletes fewer than `batch` rows; returns the rows deleted in all."""
    total = 0
    while True:
        async with db.write() as session:
            removed = await delete_older(session, older_than, batch)
        total += removed
        if removed < batch:
            return total


@dataclass(frozen=True)
class RetentionRule:
    """Keep `what` for `days` days: `prune(cutoff)` deletes what is older than the cutoff and
    returns how many rows it deleted."""

    what: str
    days: float
    prune: Callable[[dt.datetime], Awaitable[int]]


async def prune_once(
    rules: Sequence[RetentionRule], now: dt.datetime | None = None
) -> dict[str, int]:
    """One pass over every rule; a failing rule is logged and does not stop the others.
    Returns how many rows each rule deleted."""
    now = now or utcnow()
    removed: dict[str, int] = {}
    for rule in rules:
        try:
            removed[rule.what] = await rule.prune(now - dt.timedelta(days=rule.days))
        except Exception:
            log.exception("pruning %s failed; will retry", rule.what)
            continue
        if removed[rule.what]:
            log.info("pruned %d %s older than %s days", removed[rule.what], rule.what, rule.days)
    return removed


async def retention_loop(
    rules: Sequence[RetentionRule], interval_seconds: float, stopping: asyncio.Event
) -> None:
    """Prune every interval until `stopping` is set; the first pass runs after a minute, so
    short-lived processes (tests, CLI runs) never start one. Safe with any number of processes
    doing the same."""
    first_delay = min(60.0, interval_seconds)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), first_delay)
    while not stopping.is_set():
        await prune_once(rules)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval_seconds)
