"""Writing events: in the same transaction as the state change they describe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.database import after_commit
from fabric_server.db.models import Event

# PostgreSQL hands out sequence numbers before commit, so without care a reader could see
# seq 11 committed before seq 10 and skip 10 forever. Event writers take this transaction
# lock, which makes commit order equal sequence order (SQLite serialises writers anyway).
_EVENT_ORDER_LOCK = 7_146_204_002
EVENTS_CHANNEL = "fabric_events"


class EventRecorder:
    """Adds event rows to a session and wakes readers once the transaction commits."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake

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
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql" and not session.info.get("event_lock"):
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:k)"), {"k": _EVENT_ORDER_LOCK}
            )
            # Delivered at commit to every server process listening (wakes their streams).
            await session.execute(text("SELECT pg_notify(:c, '')"), {"c": EVENTS_CHANNEL})
            session.info["event_lock"] = True
        event = Event(
            kind=kind,
            organization_id=organization_id,
            job_id=job_id,
            run_id=run_id,
            node_key=node_key,
            payload=payload or {},
        )
        session.add(event)
        after_commit(session, self._wake)
        return event
