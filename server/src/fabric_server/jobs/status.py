"""Statuses of jobs, the changes between them, and the event each change records."""

from __future__ import annotations

import enum

from fabric_server.transitions import TransitionTable


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"


FINISHED_JOB_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})

_J = JobStatus
JOB_TRANSITIONS = TransitionTable[JobStatus](
    "job",
    [
        # started; again on each retry of the provider call
        ((_J.PENDING, _J.STARTED), _J.STARTED, "job.started"),
        ((_J.STARTED,), _J.COMPLETED, "job.completed"),
        # also before it started: over budget, bad input, attempts used up
        ((_J.PENDING, _J.STARTED), _J.FAILED, "job.failed"),
        # a stopping worker handed it back mid-attempt: it waits again
        ((_J.STARTED,), _J.PENDING, "job.requeued"),
    ],
)
