"""An event as readers see it: a detached copy of a committed row of the event log."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fabric_server.events.models import Event
from fabric_server.events.repository import EventFilter


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
