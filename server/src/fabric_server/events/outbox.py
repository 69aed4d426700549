"""Writing events: in the same transaction as the state change they describe.

Once that transaction commits, the recorder hands the committed events, in sequence order,
to this process's listeners (the event hub, the webhook dispatcher) straight from memory, so
nobody re-reads the log for what this process wrote. Other processes learn of them through
PostgreSQL NOTIFY (or by polling the log, on SQLite).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.base import table_of
from fabric_server.db.database import PROCESS_TOKEN, after_commit
from fabric_server.db.types import new_id, utcnow
from fabric_server.db.writer import Tx
from fabric_server.events.clip import clip_payload
from fabric_server.events.log import LogEvent
from fabric_server.events.models import Event

log = logging.getLogger("fabric_server.events")

# PostgreSQL hands out sequence numbers before commit, so without care a reader could see
# seq 11 committed before seq 10 and skip 10 forever. Event writers take this transaction
# lock, which makes commit order equal sequence order (SQLite serialises writers anyway).
_EVENT_ORDER_LOCK = 7_146_204_002
EVENTS_CHANNEL = "fabric_events"

_COLUMNS = (
    "id",
    "kind",
    "organization_id",
    "job_id",
    "run_id",
    "node_key",
    "payload",
    "created_at",
)
# Built once: SQLAlchemy compiles it once and reuses the compiled form (hot path).
_INSERT = insert(table_of(Event)).returning(table_of(Event).c.seq)
# Several rows at once; the sequence numbers come back in the order of the rows.
_INSERT_MANY = insert(table_of(Event)).returning(
    table_of(Event).c.seq, sort_by_parameter_order=True
)
CommitListener = Callable[[list[LogEvent]], None]
_EVENTS = "fabric_recorded_events"


class EventRecorder:
    """Adds event rows to a transaction and, after it commits, tells the listeners."""

    def __init__(self, wake: Callable[[], None], *, max_payload_bytes: int = 256 * 1024) -> None:
        self._wake = wake
        self.max_payload_bytes = max_payload_bytes
        self._listeners: list[CommitListener] = []

    def on_commit(self, listener: CommitListener) -> None:
        """Call `listener` with the events of every transaction of this process that
        committed some, in sequence order."""
        self._listeners.append(listener)

    async def record(
        self,
        session: AsyncSession,
        kind: str,
        *,
        organization_id: str | None,
        job_id: str | None = None,
        run_id: str | None = None,
        node_key: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> Event:
        """Add an event to an ORM write transaction."""
        if session.get_bind().dialect.name == "postgresql" and not session.info.get("event_lock"):
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:k)"), {"k": _EVENT_ORDER_LOCK}
            )
            # Delivered at commit to every server process listening (wakes their streams).
            await session.execute(
                text("SELECT pg_notify(:c, :p)"), {"c": EVENTS_CHANNEL, "p": PROCESS_TOKEN}
            )
            session.info["event_lock"] = True
        event = Event(
            kind=kind,
            organization_id=organization_id,
            job_id=job_id,
            run_id=run_id,
            node_key=node_key,
            payload=clip_payload(payload or {}, self.max_payload_bytes),
        )
        session.add(event)
        recorded: list[Event] | None = session.info.get(_EVENTS)
        if recorded is None:
            recorded = session.info[_EVENTS] = []
            after_commit(session, lambda: self.committed([LogEvent.of(e) for e in recorded]))
        recorded.append(event)
        return event

    def record_in(
        self,
        tx: Tx,
        kind: str,
        *,
        organization_id: str | None,
        job_id: str | None = None,
        run_id: str | None = None,
        node_key: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> LogEvent:
        """Add an event to a unit of the group-commit writer (SQLAlchemy Core)."""
        if not tx.is_sqlite:
            tx.once("event-order", _lock_and_notify)
        event = LogEvent(
            seq=0,
            id=new_id(),
            kind=kind,
            organization_id=organization_id,
            job_id=job_id,
            run_id=run_id,
            node_key=node_key,
            payload=clip_payload(payload or {}, self.max_payload_bytes),
            created_at=utcnow(),
        )
        values = {name: getattr(event, name) for name in _COLUMNS}
        seq = tx.conn.execute(_INSERT, values).scalar_one()
        event = dataclasses.replace(event, seq=seq)
        tx.after_commit(lambda: self.committed([event]))
        return event

    def record_many_in(
        self,
        tx: Tx,
        events: Sequence[tuple[str, str | None, str | None, str | None, dict[str, Any]]],
    ) -> list[LogEvent]:
        """Add several events (kind, organization, run, node key, payload) to a unit, in one
        multi-row statement, in the order given."""
        if not events:
            return []
        if not tx.is_sqlite:
            tx.once("event-order", _lock_and_notify)
        now = utcnow()
        made = [
            LogEvent(
                seq=0,
                id=new_id(),
                kind=kind,
                organization_id=organization_id,
                job_id=None,
                run_id=run_id,
                node_key=node_key,
                payload=clip_payload(payload, self.max_payload_bytes),
                created_at=now,
            )
            for kind, organization_id, run_id, node_key, payload in events
        ]
        rows = [{name: getattr(event, name) for name in _COLUMNS} for event in made]
        seqs = tx.conn.execute(_INSERT_MANY, rows).scalars().all()
        made = [dataclasses.replace(e, seq=seq) for e, seq in zip(made, seqs, strict=True)]
        tx.after_commit(lambda: self.committed(list(made)))
        return made

    def committed(self, events: list[LogEvent]) -> None:
        """Events of this process just committed: tell the listeners, wake the waiters."""
        events.sort(key=lambda e: e.seq)
        for listener in self._listeners:
            try:
                listener(events)
            except Exception:
                log.exception("an event listener failed")
        self._wake()


def _lock_and_notify(conn: Connection) -> None:
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _EVENT_ORDER_LOCK})
    conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": EVENTS_CHANNEL, "p": PROCESS_TOKEN})
