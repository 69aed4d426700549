"""Statuses of work items and the changes between them (work items record no events)."""

from __future__ import annotations

import enum

from fabric_server.transitions import TransitionTable


class WorkStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Queued or leased: the item will still run (a lease that expired is claimed again).
OPEN_WORK_STATUSES = frozenset({WorkStatus.QUEUED, WorkStatus.RUNNING})

_W = WorkStatus
WORK_TRANSITIONS = TransitionTable[WorkStatus](
    "work item",
    [
        # claimed; or claimed again once its worker's lease expired
        ((_W.QUEUED, _W.RUNNING), _W.RUNNING, None),
        ((_W.RUNNING,), _W.DONE, None),
        ((_W.RUNNING,), _W.FAILED, None),
        # retried after a backoff, or handed back at shutdown
        ((_W.RUNNING,), _W.QUEUED, None),
        # withdrawn before any worker took it; or, for a code worker's task, no longer
        # wanted while its worker runs it (the run ended)
        ((_W.QUEUED, _W.RUNNING), _W.CANCELLED, None),
    ],
)
