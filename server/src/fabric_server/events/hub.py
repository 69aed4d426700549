"""One tail reader per process fans new events out to every live stream.

Without it, each open stream would re-query the log on every commit: cost growing with
streams times events. The hub reads each new batch once and hands every subscriber the events
that match its filter. The log stays the truth: a subscriber that falls behind (its buffer
fills up) is told to catch up from the database, so slowness never loses an event and never
blocks writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from fabric_server.db.database import Database
from fabric_server.db.models import Event
from fabric_server.events import repository
from fabric_server.events.broadcaster import Broadcaster
from fabric_server.events.repository import EventFilter

log = logging.getLogger("fabric_server.events")
BUFFER_SIZE = 1000


@dataclass(frozen=True)
class LogEvent:
    """A detached copy of an event row."""

    seq: int
    id: str
    kind: str
    organization_id: str | None
    job_id: str | None
    run_id: str | None
    node_key: str | None
    payload: dict[str, Any]
    created_at: dt.datetime

    @classmethod
    def of(cls, row: Event) -> LogEvent:
        return cls(
            seq=row.seq,
            id=row.id,
            kind=row.kind,
            organization_id=row.organization_id,
            job_id=row.job_id,
            run_id=row.run_id,
            node_key=row.node_key,
            payload=row.payload,
            created_at=row.created_at,
        )


def matches(where: EventFilter, event: LogEvent) -> bool:
    if where.job_id is not None and event.job_id != where.job_id:
        return False
    if where.run_id is not None and event.run_id != where.run_id:
        return False
    if where.organization_ids is not None and event.organization_id not in where.organization_ids:
        return False
    if where.kinds and event.kind not in where.kinds:
        return False
    internal = event.node_key is not None and event.node_key.startswith("_fabric_")
    return where.include_internal or not internal


class Subscription:
    def __init__(self, where: EventFilter) -> None:
        self.where = where
        # `None` is never an event: it wakes a reader waiting on an ended subscription.
        self.queue: asyncio.Queue[LogEvent | None] = asyncio.Queue(BUFFER_SIZE)
        self.overflowed = False
        self.ended = False

    def end(self) -> None:
        """The server is stopping: the reader should close its stream (a waiting reader is
        woken; a reader with a full buffer is busy and looks at `ended` anyway)."""
        self.ended = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    def offer(self, event: LogEvent) -> None:
        if self.overflowed or self.ended:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True  # the reader catches up from the log instead

    def take_overflow(self) -> bool:
        """True once after the buffer overflowed; the buffer is emptied."""
        if not self.overflowed:
            return False
        while not self.queue.empty():
            self.queue.get_nowait()
        self.overflowed = False
        return True


class EventHub:
    def __init__(self, db: Database, broadcaster: Broadcaster, *, poll_seconds: float) -> None:
        self.db = db
        self.broadcaster = broadcaster
        self.poll_seconds = poll_seconds
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._position: int | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self._streams_ended = False

    async def subscribe(self, where: EventFilter) -> Subscription:
        """Register for live events; everything committed after this call is delivered.

        Once `end_streams` was called, the subscription comes back already ended.
        """
        subscription = Subscription(where)
        if self._streams_ended:
            subscription.end()
            return subscription
        self._subscribers.add(subscription)
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._tail(), name="event hub tail")
        await self._ready.wait()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def end_streams(self) -> None:
        """End every subscription, now and to come (the server is shutting down)."""
        self._streams_ended = True
        for subscription in list(self._subscribers):
            subscription.end()

    async def close(self) -> None:
        """Stop the tail reader between reads (never mid-query, which would strand the
        connection), cancelling it only if it does not stop promptly."""
        if self._task is None:
            return
        self._closing = True
        self.broadcaster.notify()
        done, _ = await asyncio.wait({self._task}, timeout=5)
        if not done:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._closing = False

    async def _tail(self) -> None:
        async with self.db.read() as session:
            if self._position is None:
                self._position = await repository.latest_seq(session)
        self._ready.set()
        everything = EventFilter(include_internal=True)
        while not self._closing:
            token = self.broadcaster.watch()
            try:
                async with self.db.read() as session:
                    rows = await repository.events_after(session, self._position, everything)
                    batch = [LogEvent.of(row) for row in rows]
            except Exception:
                log.exception("reading the event log failed; retrying")
                batch = []
            for event in batch:
                self._position = event.seq
                for subscription in list(self._subscribers):
                    if matches(subscription.where, event):
                        subscription.offer(event)
            if len(batch) < 500 and not self._closing:
                await self.broadcaster.wait(token, self.poll_seconds)
