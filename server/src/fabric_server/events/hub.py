"""One tail reader per process fans new events out to every live stream.

Without it, each open stream would re-query the log on every commit: cost growing with
streams times events. Events this process commits arrive from memory (`publish`, called by
the event recorder after commit), in sequence order; the log is read only when something
else wrote to it — another process (a PostgreSQL notification, or the periodic poll on
SQLite) — or when a gap in the sequence shows that an event came from elsewhere. Each event
goes to the subscribers whose filter matches it, found through an index on the job and run
a subscription follows.

The log stays the truth: a subscriber that falls behind (its buffer fills up) is told to
catch up from the database, so slowness never loses an event and never blocks writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fabric_server.db.database import Database
from fabric_server.events import repository
from fabric_server.events.log import LogEvent, matches
from fabric_server.events.repository import EventFilter

__all__ = ["BUFFER_SIZE", "EventHub", "LogEvent", "Subscription", "matches"]

log = logging.getLogger("fabric_server.events")
BUFFER_SIZE = 1000
_READ_BATCH = 500


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
    def __init__(self, db: Database, *, poll_seconds: float) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self._subscribers: set[Subscription] = set()
        self._by_job: dict[str, set[Subscription]] = {}
        self._by_run: dict[str, set[Subscription]] = {}
        self._general: set[Subscription] = set()  # follows no single job or run
        self._task: asyncio.Task[None] | None = None
        self._position: int | None = None
        self._ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._local: list[LogEvent] = []
        self._elsewhere = False
        self._closing = False
        self._streams_ended = False
        # Counters for benchmarks and metrics: log reads, and events handed over from memory.
        self.reads = 0
        self.from_memory = 0

    async def subscribe(self, where: EventFilter) -> Subscription:
        """Register for live events; everything committed after this call is delivered.

        Once `end_streams` was called, the subscription comes back already ended.
        """
        subscription = Subscription(where)
        if self._streams_ended:
            subscription.end()
            return subscription
        self._subscribers.add(subscription)
        if where.job_id is not None:
            self._by_job.setdefault(where.job_id, set()).add(subscription)
        elif where.run_id is not None:
            self._by_run.setdefault(where.run_id, set()).add(subscription)
        else:
            self._general.add(subscription)
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._tail(), name="event hub tail")
        await self._ready.wait()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        self._general.discard(subscription)
        where = subscription.where
        for index, key in ((self._by_job, where.job_id), (self._by_run, where.run_id)):
            if key is not None and key in index:
                index[key].discard(subscription)
                if not index[key]:
                    del index[key]

    def publish(self, events: list[LogEvent]) -> None:
        """Events this process committed (after the commit, in sequence order)."""
        if self._task is not None and not self._task.done():
            self._local.extend(events)
            self._changed.set()

    def changed_elsewhere(self) -> None:
        """Another process wrote events (a notification): read the log."""
        self._elsewhere = True
        self._changed.set()

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
        self._changed.set()
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
        read_log = False
        while not self._closing:
            self._changed.clear()
            local, self._local = self._local, []
            read_log = read_log or self._elsewhere
            self._elsewhere = False
            for event in local:
                if event.seq <= self._position:
                    continue  # already read from the log
                if event.seq != self._position + 1:
                    read_log = True  # something committed in between came from elsewhere
                    break
                self.from_memory += 1
                self._deliver(event)
            if read_log:
                await self._read_log()
            read_log = False
            if self._closing or self._local or self._elsewhere:
                continue
            try:
                await asyncio.wait_for(self._changed.wait(), self.poll_seconds)
            except TimeoutError:
                read_log = True  # other processes on SQLite, or a missed notification

    async def _read_log(self) -> None:
        everything = EventFilter(include_internal=True)
        while not self._closing:
            assert self._position is not None
            try:
                async with self.db.read() as session:
                    rows = await repository.events_after(
                        session, self._position, everything, _READ_BATCH
                    )
                    batch = [LogEvent.of(row) for row in rows]
            except Exception:
                log.exception("reading the event log failed; retrying")
                return
            self.reads += 1
            for event in batch:
                self._deliver(event)
            if len(batch) < _READ_BATCH:
                return

    def _deliver(self, event: LogEvent) -> None:
        self._position = event.seq
        followers = list(self._general)
        if event.job_id is not None:
            followers.extend(self._by_job.get(event.job_id, ()))
        if event.run_id is not None:
            followers.extend(self._by_run.get(event.run_id, ()))
        for subscription in followers:
            if matches(subscription.where, event):
                subscription.offer(event)
