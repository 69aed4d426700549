"""Job, workflow and schedule metrics counted from committed events.

The event recorder hands every committed event of this process to `EventMetrics.observe`
(an `on_commit` listener), so counters move only once the change they count is durable, and
no status transition needs code of its own. Durations are measured from the start event
to the end event when this process saw both; an entity started elsewhere (another server
process) is still counted, without a duration.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable, Hashable

from fabric_server.events.log import LogEvent
from fabric_server.observability import metrics as m
from fabric_server.observability.labels import UNKNOWN

# Starts remembered at most (the oldest are forgotten first): a bound on memory when end
# events happen in another process.
MAX_REMEMBERED = 50_000


class _Starts:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._at: OrderedDict[Hashable, tuple[str, dt.datetime]] = OrderedDict()

    def remember(self, key: Hashable, label: str, at: dt.datetime) -> None:
        if key in self._at:
            return  # a retry: the duration runs from the first attempt
        self._at[key] = (label, at)
        if len(self._at) > self.limit:
            self._at.popitem(last=False)

    def forget(self, key: Hashable) -> tuple[str, dt.datetime] | None:
        return self._at.pop(key, None)

    def __len__(self) -> int:
        return len(self._at)


class EventMetrics:
    def __init__(self, *, limit: int = MAX_REMEMBERED) -> None:
        self.jobs = _Starts(limit)
        self.runs = _Starts(limit)
        self.nodes = _Starts(limit)
        self.tasks = _Starts(limit)
        self._handlers: dict[str, Callable[[LogEvent], None]] = {
            "job.started": self._job_started,
            "job.completed": self._job_finished,
            "job.failed": self._job_finished,
            "workflow.run.started": self._run_started,
            "workflow.run.completed": self._run_finished,
            "workflow.run.failed": self._run_finished,
            "workflow.run.cancelled": self._run_finished,
            "workflow.node.started": self._node_started,
            "workflow.node.completed": self._node_finished,
            "workflow.node.failed": self._node_finished,
            "workflow.node.dispatched": self._task_dispatched,
            "workflow.node.claimed": self._task_claimed,
            "schedule.fired": self._schedule,
            "schedule.skipped": self._schedule,
        }

    def observe(self, events: list[LogEvent]) -> None:
        """Count committed events (an `EventRecorder.on_commit` listener)."""
        for event in events:
            handler = self._handlers.get(event.kind)
            if handler is not None:
                handler(event)

    def _job_started(self, event: LogEvent) -> None:
        m.JOBS_STARTED.inc()
        self.jobs.remember(event.job_id, "", event.created_at)

    def _job_finished(self, event: LogEvent) -> None:
        outcome = _outcome(event.kind)
        m.JOBS_FINISHED.labels(outcome).inc()
        started = self.jobs.forget(event.job_id)
        if started is not None:
            m.JOB_DURATION.labels(outcome).observe(_seconds(started[1], event.created_at))

    def _run_started(self, event: LogEvent) -> None:
        m.RUNS_STARTED.inc()
        self.runs.remember(event.run_id, "", event.created_at)

    def _run_finished(self, event: LogEvent) -> None:
        outcome = _outcome(event.kind)
        m.RUNS_FINISHED.labels(outcome).inc()
        started = self.runs.forget(event.run_id)
        if started is not None:
            m.RUN_DURATION.labels(outcome).observe(_seconds(started[1], event.created_at))

    def _node_started(self, event: LogEvent) -> None:
        operation = m.OPERATIONS(event.payload.get("operation"))
        m.NODES_STARTED.labels(operation).inc()
        self.nodes.remember((event.run_id, event.node_key), operation, event.created_at)

    def _node_finished(self, event: LogEvent) -> None:
        outcome = _outcome(event.kind)
        started = self.nodes.forget((event.run_id, event.node_key))
        operation = started[0] if started is not None else UNKNOWN
        m.NODES_FINISHED.labels(operation, outcome).inc()
        if started is not None:
            seconds = _seconds(started[1], event.created_at)
            m.NODE_DURATION.labels(operation, outcome).observe(seconds)

    def _task_dispatched(self, event: LogEvent) -> None:
        operation = m.OPERATIONS(event.payload.get("operation"))
        m.WORKER_TASKS.labels(operation, "dispatched").inc()
        key = (event.run_id, event.node_key, event.payload.get("attempt"))
        self.tasks.remember(key, operation, event.created_at)

    def _task_claimed(self, event: LogEvent) -> None:
        operation = m.OPERATIONS(event.payload.get("operation"))
        m.WORKER_TASKS.labels(operation, "claimed").inc()
        # The first claim of a node attempt: a task taken again after its worker died
        # is counted, without a second wait.
        dispatched = self.tasks.forget((event.run_id, event.node_key, event.payload.get("attempt")))
        if dispatched is not None:
            waited = _seconds(dispatched[1], event.created_at)
            m.WORKER_TASK_WAIT.labels(operation).observe(waited)

    def _schedule(self, event: LogEvent) -> None:
        trigger = "manual" if event.payload.get("trigger") == "manual" else "cron"
        if event.kind == "schedule.fired":
            outcome = "fired"
        elif event.payload.get("reason") == "missed":
            outcome = "missed"
        else:
            outcome = "skipped"
        m.SCHEDULE_FIRINGS.labels(trigger, outcome).inc()


def _outcome(kind: str) -> str:
    return kind.rsplit(".", 1)[1]


def _seconds(start: dt.datetime, end: dt.datetime) -> float:
    return max(0.0, (end - start).total_seconds())
