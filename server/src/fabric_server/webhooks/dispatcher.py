"""The dispatcher: turns new events into deliveries by following the event log.

It keeps one position (`webhook_dispatch_state.last_seq`) in the database. Each pass reads the
events after it for organizations that have an active endpoint, writes a delivery (plus its
first attempt and a `webhook.deliver` work item) for every endpoint that subscribes, and moves
the position — all in one transaction. So:

* a crash loses nothing: uncommitted work is redone from the old position;
* nothing is delivered twice per endpoint: the position moves atomically with the deliveries,
  and `(webhook_id, event_id)` is unique besides;
* no event is skipped: events commit in sequence order (ADR 1), so everything up to the
  highest committed sequence number is final;
* any number of processes may run one: on PostgreSQL the position row is locked with
  `SKIP LOCKED`, so one dispatches while the others skip; SQLite serialises writers.

The cheap checks run in a read transaction first: with no active endpoint, or no new event
of a subscribed organization, a pass writes nothing at all. Cheaper still, the dispatcher
remembers which organizations have an active endpoint and hears of this process's committed
events from memory: a commit whose events concern none of them wakes nothing, and with no
endpoint anywhere the dispatcher only looks again once per poll interval (which is also how
it learns of endpoints created by other processes).

Tracing: an event this process committed inside a trace (a job's execution, a request) is
remembered with that trace's `traceparent`, and its deliveries carry it, so a delivery's span
and the webhook call join the trace that caused the event. Events committed by another
process are delivered in traces of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.database import Database
from fabric_server.db.types import new_id, utcnow
from fabric_server.engine.queue import WorkQueue
from fabric_server.events.broadcaster import Broadcaster
from fabric_server.events.hub import LogEvent
from fabric_server.events.models import Event
from fabric_server.events.sse import event_to_dict
from fabric_server.net.http import trace_headers
from fabric_server.webhooks import repository
from fabric_server.webhooks.matching import matches
from fabric_server.webhooks.models import WebhookAttempt

log = logging.getLogger("fabric_server.webhooks")
DELIVER_KIND = "webhook.deliver"
# A delivery attempt whose worker keeps dying is given up after this many claims.
DELIVER_MAX_CLAIMS = 3
_INSERT_CHUNK = 500
# How many recent events' trace contexts are remembered for their deliveries.
_TRACED_EVENTS = 10_000


def event_body(event: Event) -> str:
    """The delivered body: the event exactly as SSE `data` carries it."""
    return json.dumps(event_to_dict(LogEvent.of(event)), separators=(",", ":"))


class Dispatcher:
    def __init__(
        self,
        db: Database,
        queue: WorkQueue,
        broadcaster: Broadcaster,
        *,
        poll_seconds: float,
        batch: int = 500,
        clock: Callable[[], Any] = utcnow,
    ) -> None:
        self.db = db
        self.queue = queue
        self.broadcaster = broadcaster
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = asyncio.Event()
        # Organizations with an active endpoint; None: unknown (read before the next pass).
        self._active: set[str] | None = None
        # Event id -> the `traceparent` it was committed in (this process's recent events).
        self._traces: OrderedDict[str, str] = OrderedDict()

    def observe(self, events: list[LogEvent]) -> None:
        """Events this process committed: wake up if any may need a delivery."""
        active = self._active
        if active is None or any(e.organization_id in active for e in events):
            self._remember_trace(events)
            self._wake.set()

    def _remember_trace(self, events: list[LogEvent]) -> None:
        traceparent = trace_headers().get("traceparent")
        if traceparent is None:
            return
        for event in events:
            self._traces[event.id] = traceparent
        while len(self._traces) > _TRACED_EVENTS:
            self._traces.popitem(last=False)

    def webhooks_changed(self) -> None:
        """Endpoints were created, changed or removed: look again."""
        self._active = None
        self._wake.set()

    def changed_elsewhere(self) -> None:
        """Another process committed events (its organizations are unknown here)."""
        self.webhooks_changed()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="webhook dispatcher")

    async def stop(self) -> None:
        """Stop between passes (never mid-query); cancel only if that takes too long."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        done, _ = await asyncio.wait({self._task}, timeout=5)
        if not done:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                more = await self._active_orgs() and await self.dispatch_once()
            except Exception:
                log.exception("dispatching webhook deliveries failed; will retry")
                self._active = None
                more = False
            if not more and not self._stopping:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                except TimeoutError:
                    self._active = None  # endpoints other processes created, work now due

    async def _active_orgs(self) -> set[str]:
        if self._active is None:
            async with self.db.read() as session:
                self._active = await repository.organizations_with_active_endpoints(session)
        return self._active

    async def dispatch_once(self) -> bool:
        """One pass; True when a full batch was handled (so more may be waiting)."""
        async with self.db.read() as session:
            if not await self._has_work(session):
                return False
        async with self.db.write() as session:
            position = await repository.dispatch_position(session, lock=not self.db.is_sqlite)
            if position is None:
                return False  # another process is dispatching right now
            start = await repository.earliest_active_start(session)
            if start is None:
                return False
            head = await repository.head_seq(session)
            events = await repository.events_for_active_orgs(
                session, max(position, start), head, self.batch
            )
            full = len(events) == self.batch
            await self._deliver(session, events)
            await repository.set_dispatch_position(
                session, events[-1].seq if full else head, self.clock()
            )
        return full

    async def _has_work(self, session: AsyncSession) -> bool:
        start = await repository.earliest_active_start(session)
        if start is None:
            return False
        lower = max(await repository.dispatch_position(session, lock=False) or 0, start)
        head = await repository.head_seq(session)
        return head > lower and await repository.has_events_for_active_orgs(session, lower, head)

    async def _deliver(self, session: AsyncSession, events: Sequence[Event]) -> None:
        if not events:
            return
        org_ids = sorted({e.organization_id for e in events if e.organization_id})
        subscribers = defaultdict(list)
        for webhook in await repository.active_for_organizations(session, org_ids):
            subscribers[webhook.organization_id].append(webhook)
        now = self.clock()
        rows: list[dict[str, Any]] = []
        origins: dict[str, str] = {}  # delivery id -> the trace its event was committed in
        for event in events:
            wanted = [
                w for w in subscribers.get(event.organization_id or "", []) if matches(w, event)
            ]
            if not wanted:
                continue
            body = event_body(event)
            origin = self._traces.pop(event.id, None)
            for webhook in wanted:
                delivery_id = new_id()
                if origin is not None:
                    origins[delivery_id] = origin
                rows.append(
                    {
                        "id": delivery_id,
                        "webhook_id": webhook.id,
                        "organization_id": webhook.organization_id,
                        "event_id": event.id,
                        "event_seq": event.seq,
                        "event_kind": event.kind,
                        "body": body,
                        "status": "pending",
                        "attempts": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        by_id = {row["id"]: row for row in rows}
        for offset in range(0, len(rows), _INSERT_CHUNK):
            inserted = await repository.insert_deliveries(
                session, rows[offset : offset + _INSERT_CHUNK]
            )
            for delivery_id in inserted:
                row = by_id[delivery_id]
                session.add(
                    WebhookAttempt(
                        delivery_id=delivery_id,
                        webhook_id=row["webhook_id"],
                        attempt=1,
                        status="pending",
                        created_at=now,
                    )
                )
                await self.queue.enqueue(
                    session,
                    DELIVER_KIND,
                    ref_id=delivery_id,
                    organization_id=row["organization_id"],
                    payload=_with_origin({"attempt": 1}, origins.get(delivery_id)),
                    max_attempts=DELIVER_MAX_CLAIMS,
                )
        if rows:
            log.debug("dispatched %d webhook deliveries for %d events", len(rows), len(events))


def _with_origin(payload: dict[str, Any], traceparent: str | None) -> dict[str, Any]:
    """A delivery's work payload, carrying the trace its event was committed in."""
    return payload if traceparent is None else {**payload, "traceparent": traceparent}
