"""Code workers' tasks: taken by long poll under a lease, kept by heartbeats, finished by
what the worker reports.

A task is a work item of kind `worker:<operation>` whose reference is the node it runs; the
node stays `running` (state `AwaitingWorker`) meanwhile. Every call about a task names the
attempt it was taken as: the work item's `attempts` fences the lease, so a worker that lost
its task (its lease expired and another worker took it) can no longer report for it. A report
is recorded only while the node still runs the attempt that dispatched the task; otherwise
the run moved on (cancelled, failed elsewhere, timed out) and the task is cancelled.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, func, or_, select, update

from fabric_server.db.base import table_of
from fabric_server.db.database import Database
from fabric_server.db.types import utcnow
from fabric_server.db.writer import Tx, Writer
from fabric_server.engine.models import WorkItem
from fabric_server.engine.queue import LeasePool, WorkQueue
from fabric_server.engine.status import WORK_TRANSITIONS, WorkStatus
from fabric_server.errors import Conflict, NotFound, Unprocessable
from fabric_server.events.outbox import EventRecorder
from fabric_server.secrets.service import SecretStore
from fabric_server.workers.models import CodeWorker
from fabric_server.workers.signal import TaskSignal, wait_until
from fabric_server.workflows import machine
from fabric_server.workflows.core_steps import NODES, RUNS, CoreSteps, Loaded
from fabric_server.workflows.effects import NODE_WORK_KIND, TASK_KIND_PREFIX, task_kind
from fabric_server.workflows.sizes import NodeLimits
from fabric_server.workflows.snapshots import NodeSnapshot, Step
from fabric_server.workflows.status import TERMINAL_RUN_STATUSES, NodeStatus

ITEMS = table_of(WorkItem)
# A waiting poll looks again this often even when nothing woke it: a lease that expired
# (its worker died) makes a task runnable without anyone saying so.
RECHECK_SECONDS = 1.0
# Places reserved in this process's worker for node work a report may create.
_LEASES_PER_REPORT = 2

for _source, _target in (
    (WorkStatus.QUEUED, WorkStatus.RUNNING),
    (WorkStatus.RUNNING, WorkStatus.RUNNING),
    (WorkStatus.RUNNING, WorkStatus.DONE),
    (WorkStatus.RUNNING, WorkStatus.FAILED),
    (WorkStatus.RUNNING, WorkStatus.CANCELLED),
    (WorkStatus.RUNNING, WorkStatus.QUEUED),
):
    WORK_TRANSITIONS.check(_source, _target)  # the moves below, checked once at import


class LeaseLost(Conflict):
    code = "lease_lost"


class TaskCancelled(Conflict):
    code = "task_cancelled"


class OutputTooLarge(Unprocessable):
    code = "output_too_large"


class UnknownTask(NotFound):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"Task {task_id} was not found.")


@dataclass(frozen=True)
class Report:
    """What a worker says of an attempt: an output, or a failure."""

    output: dict[str, Any] | None = None
    error: str | None = None
    retryable: bool = True
    details: dict[str, Any] | None = None


Verdict = Literal["recorded", "missing", "lost", "cancelled"]


@dataclass
class HeldTask:
    id: str
    attempt: int


class TaskBoard:
    def __init__(
        self,
        db: Database,
        writer: Writer,
        queue: WorkQueue,
        core: CoreSteps,
        events: EventRecorder,
        secrets: SecretStore,
        signal: TaskSignal,
        *,
        limits: NodeLimits,
        lease_seconds: float,
        heartbeat_seconds: float,
        output_max_bytes: int,
    ) -> None:
        self.db = db
        self.writer = writer
        self.queue = queue
        self.core = core
        self.events = events
        self.secrets = secrets
        self.signal = signal
        self.limits = limits
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.output_max_bytes = output_max_bytes

    # -- taking tasks ----------------------------------------------------------------------

    async def take(
        self,
        worker: CodeWorker,
        capacity: Mapping[str, int],
        wait_seconds: float,
        gone: Callable[[], Awaitable[bool]],
    ) -> list[dict[str, Any]]:
        """Lease up to `capacity[operation]` tasks of each operation, waiting up to
        `wait_seconds` for the first; `gone` tells that the caller left (nothing is leased to
        a worker that is no longer listening)."""
        wanted = {task_kind(op): count for op, count in capacity.items() if count > 0}
        deadline = time.monotonic() + wait_seconds
        while wanted:
            waiter = self.signal.waiter()  # before looking: a wake-up after it is not lost
            if await gone():
                return []
            tasks = await self._take_once(worker, wanted)
            if tasks:
                return tasks
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await wait_until(waiter, min(remaining, RECHECK_SECONDS))
        return []

    async def _take_once(self, worker: CodeWorker, wanted: dict[str, int]) -> list[dict[str, Any]]:
        query = _candidates(worker, wanted, utcnow())
        if self.db.is_sqlite:
            # A look at an empty queue never takes SQLite's write lock.
            rows = await self.db.run_read(lambda conn: conn.execute(query).all())
            picked = _pick(rows, wanted)
            if not picked:
                return []
            leased = await self.writer.write(lambda tx: self._lease(tx, worker, picked))
        else:
            # One round trip: rows another poll is taking are skipped, not waited for.
            locked = query.with_for_update(skip_locked=True)

            def unit(tx: Tx) -> list[dict[str, Any]]:
                picked = _pick(tx.conn.execute(locked).all(), wanted)
                return self._lease(tx, worker, picked) if picked else []

            leased = await self.writer.write(unit)
        exhausted = [row for row in leased if row["attempts"] > row["max_attempts"]]
        for row in exhausted:
            error = (
                f"the task was taken {row['max_attempts']} times and never finished (its "
                "workers stopped or lost their lease each time)"
            )
            await self._record(worker, row["id"], row["attempts"], Report(error=error), final=True)
        return await self._describe([row for row in leased if row not in exhausted])

    def _lease(self, tx: Tx, worker: CodeWorker, ids: Sequence[str]) -> list[dict[str, Any]]:
        now = utcnow()
        rows = [
            dict(row)
            for row in tx.conn.execute(
                update(ITEMS)
                .where(ITEMS.c.id.in_(sorted(ids)), _runnable(now))
                .values(
                    status=WorkStatus.RUNNING,
                    lease_owner=worker.id,
                    lease_expires_at=now + dt.timedelta(seconds=self.lease_seconds),
                    attempts=ITEMS.c.attempts + 1,
                    updated_at=now,  # when it was taken: the task's time limit counts from it
                )
                .returning(ITEMS)
            ).mappings()
        ]
        for row in rows:
            if row["attempts"] <= row["max_attempts"]:
                task = row["payload"]
                self.events.record_in(
                    tx,
                    "workflow.node.claimed",
                    organization_id=row["organization_id"],
                    run_id=task["run_id"],
                    node_key=task["node_key"],
                    payload={
                        "operation": task["operation"],
                        "attempt": task["node_attempt"],
                        "task_id": row["id"],
                        "task_attempt": row["attempts"],
                        "worker_id": worker.id,
                        "worker_name": worker.name,
                    },
                )
        return rows

    async def _describe(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The tasks as the worker receives them, with the secrets they name."""
        if not rows:
            return []
        names = {name for row in rows for name in row["payload"].get("secrets", [])}
        values: dict[str, str] = {}
        if names:
            async with self.db.read() as session:
                values = await self.secrets.get_many(
                    session, str(rows[0]["organization_id"]), names
                )
        tasks = []
        for row in rows:
            task = row["payload"]
            tasks.append(
                {
                    "id": row["id"],
                    "attempt": row["attempts"],
                    "operation": task["operation"],
                    "run_id": task["run_id"],
                    "node_key": task["node_key"],
                    "node_attempt": task["node_attempt"],
                    "inputs": task.get("inputs", {}),
                    "config": task.get("config", {}),
                    "secrets": {n: values[n] for n in task.get("secrets", []) if n in values},
                    "timeout_seconds": task.get("timeout_seconds"),
                    "lease_expires_at": row["lease_expires_at"].isoformat(),
                    "idempotency_key": f"{task['run_id']}:{task['node_key']}:"
                    f"{task['node_attempt']}",
                }
            )
        return tasks

    # -- heartbeats ------------------------------------------------------------------------

    async def heartbeat(
        self, worker: CodeWorker, held: Sequence[HeldTask]
    ) -> tuple[list[str], dt.datetime]:
        """Extend the leases of the tasks the worker holds; the ids it should stop (lost,
        no longer wanted, or over their time limit — those are recorded as timed out), and
        until when the others are leased."""
        now = utcnow()
        expires = now + dt.timedelta(seconds=self.lease_seconds)
        stop, late = await self.writer.write(lambda tx: self._renew(tx, worker, held, now))
        for row in late:
            seconds = float(row["payload"].get("timeout_seconds") or 0)
            report = Report(error=f"timed out after {seconds:g} s")
            await self._record(worker, row["id"], row["attempts"], report)
        return sorted([*stop, *(row["id"] for row in late)]), expires

    def _renew(
        self, tx: Tx, worker: CodeWorker, held: Sequence[HeldTask], now: dt.datetime
    ) -> tuple[list[str], list[dict[str, Any]]]:
        attempts = {task.id: task.attempt for task in held}
        if not attempts:
            return [], []
        rows = [
            dict(row)
            for row in tx.conn.execute(
                update(ITEMS)
                .where(
                    ITEMS.c.id.in_(sorted(attempts)),
                    ITEMS.c.lease_owner == worker.id,
                    ITEMS.c.status == WorkStatus.RUNNING,
                    ITEMS.c.kind.startswith(TASK_KIND_PREFIX),
                )
                # `updated_at` kept: it says when the task was taken.
                .values(
                    lease_expires_at=now + dt.timedelta(seconds=self.lease_seconds),
                    updated_at=ITEMS.c.updated_at,
                )
                .returning(ITEMS)
            ).mappings()
        ]
        kept = [row for row in rows if row["attempts"] == attempts[row["id"]]]
        renewed = {row["id"] for row in kept}
        stop = [task_id for task_id in attempts if task_id not in renewed]
        wanted = _still_wanted(tx, kept)
        late = []
        for row in kept:
            if row["id"] not in wanted:
                self._finish(tx, row, WorkStatus.CANCELLED)
                stop.append(row["id"])
                continue
            limit = float(row["payload"].get("timeout_seconds") or 0)
            # A heartbeat's worth of slack: the worker enforces the limit itself first.
            if limit and (now - row["updated_at"]).total_seconds() > limit + self.heartbeat_seconds:
                late.append(row)
        return stop, late

    # -- reports ---------------------------------------------------------------------------

    async def report(self, worker: CodeWorker, task_id: str, attempt: int, report: Report) -> None:
        """Record the attempt's outcome; raises `UnknownTask`, `LeaseLost`, `TaskCancelled`
        or `OutputTooLarge` (the task stays leased: report a failure instead)."""
        if report.output is not None:
            size = len(json.dumps(report.output, separators=(",", ":")).encode())
            if size > self.output_max_bytes:
                raise OutputTooLarge(
                    f"The output is {size} bytes, more than the {self.output_max_bytes} a task "
                    "may report (FABRIC_WORKER_TASK_OUTPUT_MAX_BYTES); the task is still "
                    "yours: report a failure instead, or return less.",
                    details={"bytes": size, "limit": self.output_max_bytes},
                )
        _raise_for(await self._record(worker, task_id, attempt, report), task_id)

    async def note(
        self, worker: CodeWorker, task_id: str, attempt: int, kind: str, payload: dict[str, Any]
    ) -> None:
        """Record a progress or log event of the task's node."""

        def unit(tx: Tx) -> Verdict:
            row, verdict = _held(tx, worker, task_id, attempt)
            if row is None:
                return verdict
            task = row["payload"]
            self.events.record_in(
                tx,
                kind,
                organization_id=row["organization_id"],
                run_id=task["run_id"],
                node_key=task["node_key"],
                payload={**payload, "attempt": task["node_attempt"], "task_id": task_id},
            )
            return "recorded"

        _raise_for(await self.writer.write(unit), task_id)

    async def _record(
        self, worker: CodeWorker, task_id: str, attempt: int, report: Report, *, final: bool = False
    ) -> Verdict:
        pool = self.queue.reserve(NODE_WORK_KIND, _LEASES_PER_REPORT, worker.organization_id)
        try:
            return await self.writer.write(
                lambda tx: self._record_unit(tx, worker, task_id, attempt, report, pool, final)
            )
        finally:
            pool.settle()

    def _record_unit(
        self,
        tx: Tx,
        worker: CodeWorker,
        task_id: str,
        attempt: int,
        report: Report,
        pool: LeasePool,
        final: bool,
    ) -> Verdict:
        row, verdict = _held(tx, worker, task_id, attempt)
        if row is None:
            return verdict
        task = row["payload"]
        loaded = self.core.load(tx, str(task["run_id"]))
        node = _node(loaded, str(task["node_key"]))
        if (
            loaded is None
            or node is None
            or not machine.owns_attempt(loaded.run, node, int(task["node_attempt"]))
        ):
            self._finish(tx, row, WorkStatus.CANCELLED)
            return "cancelled"
        step = self._decide(loaded, node, report, final)
        self.core.apply(tx, loaded, [step], pool)
        if report.error is not None and report.details:
            self.events.record_in(
                tx,
                "workflow.node.log",
                organization_id=row["organization_id"],
                run_id=task["run_id"],
                node_key=task["node_key"],
                payload={
                    "level": "error",
                    "message": report.error,
                    "details": report.details,
                    "attempt": task["node_attempt"],
                    "task_id": task_id,
                },
            )
        self._finish(tx, row, WorkStatus.DONE if report.output is not None else WorkStatus.FAILED)
        return "recorded"

    def _decide(self, loaded: Loaded, node: NodeSnapshot, report: Report, final: bool) -> Step:
        run, nodes, now = loaded.run, loaded.nodes, utcnow()
        if report.output is not None:
            too_large = self.limits.refusal(run.context, report.output, None)
            if too_large is not None:
                return machine.task_reported(
                    run,
                    nodes,
                    node.key,
                    output=None,
                    error=too_large,
                    permanent=True,
                    retry_delay=0,
                    now=now,
                )
        return machine.task_reported(
            run,
            nodes,
            node.key,
            output=report.output,
            error=report.error,
            permanent=final or not report.retryable,
            retry_delay=self.queue.retry.delay(node.attempts),
            now=now,
        )

    def _finish(self, tx: Tx, row: Mapping[str, Any], status: WorkStatus) -> None:
        """Finish a task this unit found held (the queue's lease-guarded finish)."""
        held = WorkItem(id=row["id"], lease_owner=row["lease_owner"], attempts=row["attempts"])
        self.queue.finish_in(tx, held, status=status)

    # -- releasing ---------------------------------------------------------------------------

    def release_in(self, tx: Tx, worker_id: str) -> int:
        """Hand every task the worker holds back to the queue at once (it stopped); the
        interrupted attempts are not counted."""
        now = utcnow()
        released = tx.conn.execute(
            update(ITEMS)
            .where(
                ITEMS.c.lease_owner == worker_id,
                ITEMS.c.status == WorkStatus.RUNNING,
                ITEMS.c.kind.startswith(TASK_KIND_PREFIX),
            )
            .values(
                status=WorkStatus.QUEUED,
                attempts=ITEMS.c.attempts - 1,
                lease_owner=None,
                lease_expires_at=None,
                available_at=now,
                updated_at=now,
            )
            .returning(ITEMS.c.id)
        ).all()
        if released:
            self.queue.announce_in(tx)
        return len(released)

    async def in_flight(self, worker_ids: Sequence[str]) -> dict[str, int]:
        """How many tasks each worker holds now."""
        if not worker_ids:
            return {}
        query = (
            select(ITEMS.c.lease_owner, func.count())
            .where(
                ITEMS.c.lease_owner.in_(list(worker_ids)),
                ITEMS.c.status == WorkStatus.RUNNING,
                ITEMS.c.kind.startswith(TASK_KIND_PREFIX),
            )
            .group_by(ITEMS.c.lease_owner)
        )
        rows = await self.db.run_read(lambda conn: conn.execute(query).all())
        return {str(owner): int(count) for owner, count in rows}


def _candidates(worker: CodeWorker, wanted: Mapping[str, int], now: dt.datetime) -> Select[Any]:
    """Runnable tasks of the wanted kinds of the worker's organization, most urgent first."""
    return (
        select(ITEMS.c.id, ITEMS.c.kind)
        .where(
            _runnable(now),
            ITEMS.c.kind.in_(sorted(wanted)),
            ITEMS.c.organization_id == worker.organization_id,
        )
        .order_by(ITEMS.c.priority.desc(), ITEMS.c.available_at, ITEMS.c.id)
        .limit(sum(wanted.values()) * 2)
    )


def _pick(rows: Sequence[Any], wanted: Mapping[str, int]) -> list[str]:
    """The ids to take: at most `wanted[kind]` of each kind, in the rows' order."""
    left, picked = dict(wanted), []
    for row in rows:
        if left.get(row.kind, 0) > 0:
            left[row.kind] -= 1
            picked.append(row.id)
    return picked


def _runnable(now: dt.datetime) -> ColumnElement[bool]:
    return or_(
        (ITEMS.c.status == WorkStatus.QUEUED) & (ITEMS.c.available_at <= now),
        (ITEMS.c.status == WorkStatus.RUNNING) & (ITEMS.c.lease_expires_at < now),
    )


def _held(
    tx: Tx, worker: CodeWorker, task_id: str, attempt: int
) -> tuple[dict[str, Any] | None, Verdict]:
    """The task's row when `worker` holds it as `attempt`; else None and why not."""
    found = tx.conn.execute(select(ITEMS).where(ITEMS.c.id == task_id)).mappings().first()
    if (
        found is None
        or not str(found["kind"]).startswith(TASK_KIND_PREFIX)
        or found["organization_id"] != worker.organization_id
    ):
        return None, "missing"
    row = dict(found)
    if row["status"] == WorkStatus.CANCELLED and row["attempts"] == attempt:
        return None, "cancelled"
    ours = row["lease_owner"] == worker.id and row["attempts"] == attempt
    if row["status"] != WorkStatus.RUNNING or not ours:
        return None, "lost"
    return row, "recorded"


def _node(loaded: Loaded | None, key: str) -> NodeSnapshot | None:
    if loaded is None:
        return None
    return next((n for n in loaded.nodes if n.key == key), None)


def _still_wanted(tx: Tx, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """The tasks among `rows` whose node still runs the attempt that dispatched them."""
    if not rows:
        return set()
    nodes = {
        row.id: row
        for row in tx.conn.execute(
            select(NODES.c.id, NODES.c.status, NODES.c.attempts, RUNS.c.status.label("run"))
            .join(RUNS, RUNS.c.id == NODES.c.run_id)
            .where(NODES.c.id.in_([row["ref_id"] for row in rows]))
        )
    }
    wanted = set()
    for row in rows:
        node = nodes.get(row["ref_id"])
        if (
            node is not None
            and node.run not in TERMINAL_RUN_STATUSES
            and node.status == NodeStatus.RUNNING
            and node.attempts == row["payload"].get("node_attempt")
        ):
            wanted.add(row["id"])
    return wanted


def _raise_for(verdict: Verdict, task_id: str) -> None:
    if verdict == "missing":
        raise UnknownTask(task_id)
    if verdict == "lost":
        raise LeaseLost(
            "This attempt no longer holds the task: it was finished already, or its lease "
            "expired and another worker took it. Drop the result."
        )
    if verdict == "cancelled":
        raise TaskCancelled(
            "The task is no longer wanted (its run was cancelled or ended, or the node moved "
            "on); the result was not recorded."
        )


__all__ = ["HeldTask", "LeaseLost", "OutputTooLarge", "Report", "TaskBoard", "TaskCancelled"]
