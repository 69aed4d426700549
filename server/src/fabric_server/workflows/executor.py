"""Work handlers that drive runs: start a run, execute or wake a node, cancel a child run,
time out a node waiting for input.

Each step is a unit of the group-commit writer (`core_steps`): it loads the run under its
lock, lets the state machine decide, writes what changed and completes the work item, all in
one transaction. An `instant` operation (no I/O: noop, context and text operations,
delays, approvals, child runs) begins and finishes inside that one unit. Any other is two
units around the call, which holds no database connection; the second records the outcome
only if the node is still in the attempt that began (and the run was not cancelled
meanwhile), so a node re-executed after a crash cannot complete twice, and a worker that lost
its lease cannot record anything. Work a step creates is handed to this process's worker in
memory when it has room.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.database import Database
from fabric_server.db.types import new_id, utcnow
from fabric_server.db.writer import Tx, Writer
from fabric_server.engine.handler import RetryingHandler
from fabric_server.engine.models import WorkItem
from fabric_server.engine.queue import LeasePool, WorkQueue
from fabric_server.events.hub import EventHub
from fabric_server.events.repository import EventFilter
from fabric_server.provider_calls.use_case import ProviderCalls
from fabric_server.workflows import machine, repository
from fabric_server.workflows.core_steps import DEFINITIONS, RUNS, CoreSteps, Loaded
from fabric_server.workflows.effects import NODE_WORK_KIND
from fabric_server.workflows.lifecycle import RunLifecycle
from fabric_server.workflows.machine import NodeWork
from fabric_server.workflows.models import WorkflowNodeState, WorkflowRun
from fabric_server.workflows.node_state import AwaitingChildren, Sleeping
from fabric_server.workflows.nodes import OperationRegistry
from fabric_server.workflows.nodes.base import (
    ChildRun,
    Completed,
    Dispatch,
    NodeError,
    NodeRun,
    Outcome,
    Sleep,
    SpawnChildren,
    TransientNodeError,
    WaitForInput,
    run_instantly,
)
from fabric_server.workflows.sizes import NodeLimits
from fabric_server.workflows.snapshots import NodeSnapshot, RunSnapshot, Step
from fabric_server.workflows.status import TERMINAL_RUN_STATUSES, NodeStatus, RunStatus
from fabric_server.workflows.writer import run_snapshot

_Found = tuple[WorkflowRun, WorkflowNodeState, list[WorkflowNodeState]]
# Places reserved in the local worker for the items one step may create (a linear step
# readies one node; more are queued for any worker to claim).
_LEASES_PER_STEP = 2
RUN_TERMINAL_KINDS = ("workflow.run.completed", "workflow.run.failed", "workflow.run.cancelled")


@dataclass(frozen=True)
class _Failure:
    """An operation that raised: permanent (`NodeError`) or worth retrying."""

    error: str
    permanent: bool


class _Interrupted:
    """The run ended while the operation was running; its result is not wanted."""


_Result = Outcome | _Failure | _Interrupted


@dataclass(frozen=True)
class _Begun:
    """An attempt the first unit began, for an operation that waits on something."""

    node: NodeRun
    attempt: int


class Steps:
    """Runs units that decide a step for a run, with leases for what they create."""

    def __init__(self, writer: Writer, queue: WorkQueue, core: CoreSteps) -> None:
        self.writer = writer
        self.queue = queue
        self.core = core

    async def write(
        self, item: WorkItem, unit: _Unit, leases: int = _LEASES_PER_STEP
    ) -> _Begun | None:
        """Run `unit` for the run of `item`, with places reserved in the local worker for the
        work it creates (the run's organization's)."""
        # The first place may be the finishing item's own (a run's next node takes over).
        pool = self.queue.reserve(NODE_WORK_KIND, leases, item.organization_id, replacing=True)
        try:
            return await self.writer.write(lambda tx: unit(tx, pool))
        finally:
            pool.settle()


_Unit = Callable[[Tx, LeasePool], "_Begun | None"]


class _RunHandler(RetryingHandler):
    """A run-level step; should it keep failing unexpectedly, the run fails with the error."""

    def __init__(
        self, db: Database, queue: WorkQueue, lifecycle: RunLifecycle, steps: Steps
    ) -> None:
        super().__init__(db, queue)
        self.lifecycle = lifecycle
        self.steps = steps

    async def on_failure(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        run = await repository.lock_run(session, item.ref_id or "")
        if run is not None and not run.status.is_terminal:
            nodes = await repository.nodes_of(session, run.id)
            await self.lifecycle.fail_run(session, run, nodes, f"{item.kind} failed: {error}")


class RunStartHandler(_RunHandler):
    """`workflow.run.start`: the run begins and its root nodes become ready."""

    async def execute(self, item: WorkItem) -> None:
        core = self.steps.core

        def start(tx: Tx, pool: LeasePool) -> None:
            loaded = core.load(tx, item.ref_id or "")
            if loaded is not None and loaded.run.status == RunStatus.PENDING:
                step = machine.start_run(loaded.run, loaded.nodes, now=utcnow())
                core.apply(tx, loaded, [step], pool)
            self.queue.finish_in(tx, item)

        await self.steps.write(item, start)


class RunCancelHandler(_RunHandler):
    """`workflow.run.cancel`: a child run whose parent ended is cancelled."""

    async def execute(self, item: WorkItem) -> None:
        core = self.steps.core

        def cancel(tx: Tx, pool: LeasePool) -> None:
            loaded = core.load(tx, item.ref_id or "")
            if loaded is not None and not loaded.run.status.is_terminal:
                reason = f"parent run {loaded.run.parent_run_id} ended"
                step = machine.cancel_run(loaded.run, loaded.nodes, reason=reason, now=utcnow())
                core.apply(tx, loaded, [step], pool)
            self.queue.finish_in(tx, item)

        await self.steps.write(item, cancel, leases=0)


class NodeHandler(RetryingHandler):
    """`workflow.node`: execute a ready node, wake a sleeping one, or collect child runs."""

    def __init__(
        self,
        db: Database,
        queue: WorkQueue,
        lifecycle: RunLifecycle,
        operations: OperationRegistry,
        calls: ProviderCalls,
        steps: Steps,
        hub: EventHub,
        *,
        max_descendants: int,
        limits: NodeLimits | None = None,
    ) -> None:
        super().__init__(db, queue)
        self.max_descendants = max_descendants
        self.limits = limits or NodeLimits()
        self.lifecycle = lifecycle
        self.operations = operations
        self.calls = calls
        self.steps = steps
        self.core = steps.core
        self.hub = hub

    async def execute(self, item: WorkItem) -> None:
        begun = await self.steps.write(item, lambda tx, pool: self._first(tx, item, pool))
        if begun is None:
            return
        result = await self._execute(begun.node)
        if isinstance(result, Completed) and any(r.cost_usd > 0 for r in result.usage):
            # Paid: the budget's running spend and alerts go with it (its row lock first).
            await self._record_paid(item, begun.attempt, result)
            return
        await self.steps.write(
            item, lambda tx, pool: self._second(tx, item, begun.attempt, result, pool)
        )

    def _first(self, tx: Tx, item: WorkItem, pool: LeasePool) -> _Begun | None:
        """Decide what the item does; do it all when that needs no waiting."""
        loaded = self.core.load(tx, str(item.payload.get("run_id", "")))
        node = None if loaded is None else loaded.node_by_id(item.ref_id or "")
        if loaded is None or node is None:
            self.queue.finish_in(tx, item)
            return None
        work = machine.node_work(loaded.run, node)
        now = utcnow()
        if work is NodeWork.EXECUTE:
            begin = machine.begin_attempt(loaded.run, loaded.nodes, node.key, now=now)
            running = begin.node(node.key)
            prepared = _prepare(
                begin.run,
                running,
                begin.nodes,
                loaded.created_by,
                max_rendered_bytes=self.limits.rendered_bytes,
            )
            operation = self.operations.get(node.operation)
            if not operation.instant:
                self.core.apply(tx, loaded, [begin], pool)
                return _Begun(prepared, running.attempts)
            result: _Result
            try:
                result = run_instantly(operation, prepared)
            except Exception as exc:
                result = _failure(exc)
            after = self._decide(tx, loaded, begin.run, begin.nodes, node.key, result, now)
            self.core.apply(tx, loaded, [begin, *after], pool)
        elif work is NodeWork.WAKE or work is NodeWork.COLLECT:
            self.core.apply(tx, loaded, self._resume(tx, loaded, node, now), pool)
        self.queue.finish_in(tx, item)
        return None

    def _second(
        self, tx: Tx, item: WorkItem, attempt: int, result: _Result, pool: LeasePool
    ) -> None:
        """Record the outcome of the attempt, if the node is still in it."""
        loaded = self.core.load(tx, str(item.payload.get("run_id", "")))
        node = None if loaded is None else loaded.node_by_id(item.ref_id or "")
        if (
            loaded is not None
            and node is not None
            and not isinstance(result, _Interrupted)
            and machine.owns_attempt(loaded.run, node, attempt)
        ):
            if isinstance(result, Completed):
                for record in result.usage:  # free calls: no spend, no budget lock
                    self.calls.record_unpaid_in(tx.conn, record)
            steps = self._decide(tx, loaded, loaded.run, loaded.nodes, node.key, result, utcnow())
            self.core.apply(tx, loaded, steps, pool)
        self.queue.finish_in(tx, item)

    def _decide(
        self,
        tx: Tx,
        loaded: Loaded,
        run: RunSnapshot,
        nodes: Sequence[NodeSnapshot],
        key: str,
        result: _Result,
        now: dt.datetime,
    ) -> list[Step]:
        """The step that records an attempt's result."""
        match result:
            case _Failure(error, permanent):
                attempts = next(n.attempts for n in nodes if n.key == key)
                delay = self.queue.retry.delay(attempts)
                return [
                    machine.record_failure(
                        run,
                        nodes,
                        key,
                        error=error,
                        permanent=permanent,
                        retry_delay=delay,
                        now=now,
                    )
                ]
            case Completed(output, context_patch, _):
                too_large = self.limits.refusal(run.context, output, context_patch)
                if too_large is not None:
                    return [machine.fail_node(run, nodes, key, error=too_large, now=now)]
                return [
                    machine.node_succeeded(
                        run, nodes, key, output, context_patch=context_patch, now=now
                    )
                ]
            case WaitForInput(prompt, timeout_seconds):
                return [
                    machine.wait_for_input(
                        run, nodes, key, prompt=prompt, timeout_seconds=timeout_seconds, now=now
                    )
                ]
            case Sleep(seconds):
                return [machine.sleep(run, nodes, key, seconds=seconds, now=now)]
            case Dispatch():
                return [self._dispatch(run, nodes, key, result, now)]
            case SpawnChildren():
                wanted = len(result.contexts)
                below = self.core.tree_size(tx, loaded.tree)
                if below + wanted > self.max_descendants:
                    error = (
                        f"starting {wanted} child runs would put {below + wanted} runs below "
                        f"run {loaded.tree}, more than the {self.max_descendants} allowed "
                        "(FABRIC_WORKFLOW_MAX_DESCENDANTS)"
                    )
                    return [machine.fail_node(run, nodes, key, error=error, now=now)]
                definition_id = _definition_id(tx, run.organization_id, result)
                return [
                    machine.spawn_children(
                        run,
                        nodes,
                        key,
                        definition_id=definition_id,
                        wanted=result.definition_id or result.definition_name,
                        contexts=result.contexts,
                        child_ids=[new_id() for _ in result.contexts],
                        now=now,
                    )
                ]
        return []

    def _dispatch(
        self,
        run: RunSnapshot,
        nodes: Sequence[NodeSnapshot],
        key: str,
        dispatch: Dispatch,
        now: dt.datetime,
    ) -> Step:
        """Hand the node's attempt to a code worker: the task carries what the function is
        given (secrets only by name: they are read when a worker takes the task)."""
        node = next(n for n in nodes if n.key == key)
        task = {
            "run_id": run.id,
            "node_key": key,
            "node_attempt": node.attempts,
            "operation": dispatch.operation,
            "inputs": dispatch.inputs,
            "config": dispatch.config,
            "secrets": list(dispatch.secret_names),
            "timeout_seconds": float(run.graph[key].policy.timeout_seconds),
        }
        return machine.dispatch(
            run,
            nodes,
            key,
            operation=dispatch.operation,
            task=task,
            schedule_to_start_seconds=dispatch.schedule_to_start_seconds,
            now=now,
        )

    def _resume(self, tx: Tx, loaded: Loaded, node: NodeSnapshot, now: dt.datetime) -> list[Step]:
        """A sleeping node woke up, or a child run it waits for moved on."""
        run, nodes = loaded.run, loaded.nodes
        operation = self.operations.get(node.operation)
        prepared = _prepare(
            run, node, nodes, loaded.created_by, max_rendered_bytes=self.limits.rendered_bytes
        )
        outcome: Outcome | None = None
        try:
            match node.state:
                case Sleeping(wake_at):
                    remaining = machine.seconds_until(wake_at, now)
                    if remaining > 0:  # due early by another process's clock
                        return [
                            machine.keep_sleeping(run, nodes, node.key, seconds=remaining, now=now)
                        ]
                    outcome = operation.wake(prepared, node.state)
                case AwaitingChildren():
                    children = _finished_children(tx, run.id, node.key)
                    if children is not None:
                        outcome = operation.collect(prepared, children)
        except NodeError as exc:
            return [machine.fail_node(run, nodes, node.key, error=str(exc), now=now)]
        if outcome is None:
            return []
        return self._decide(tx, loaded, run, nodes, node.key, outcome, now)

    async def on_failure(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        """The node's work item kept failing or being interrupted: the node fails."""
        found = await _locked_node(session, item, (NodeStatus.READY, NodeStatus.RUNNING))
        if found is not None:
            run, node, nodes = found
            await self.lifecycle.fail_node(session, run, node, nodes, error)

    async def _record_paid(self, item: WorkItem, attempt: int, result: Completed) -> None:
        async with self.db.write() as session:
            found = await _locked_node(session, item, (NodeStatus.RUNNING,))
            if found is not None:
                run, node, nodes = found
                snapshot = self.lifecycle.writer.node_snapshot(node)
                if machine.owns_attempt(run_snapshot(run), snapshot, attempt):
                    # Before any event of this transaction: the budget row lock first.
                    await self.calls.record_in(session, result.usage)
                    too_large = self.limits.refusal(
                        run.context, result.output, result.context_patch
                    )
                    if too_large is not None:  # billed all the same, but not kept
                        await self.lifecycle.fail_node(session, run, node, nodes, too_large)
                    else:
                        await self.lifecycle.succeed(
                            session, run, node, nodes, result.output, result.context_patch
                        )
            await self.queue.complete(session, item)

    async def _execute(self, node: NodeRun) -> _Result:
        """Run the operation under its timeout, abandoning it if the run ends meanwhile."""
        operation = self.operations.get(node.operation)
        task = asyncio.create_task(operation.run(node))
        watcher = asyncio.create_task(self._run_ended(node.run_id))
        try:
            done, _ = await asyncio.wait(
                {task, watcher}, timeout=node.timeout_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for pending in (task, watcher):
                pending.cancel()
            await asyncio.gather(task, watcher, return_exceptions=True)
        if task not in done:
            if watcher in done:
                return _Interrupted()
            return _Failure(f"timed out after {node.timeout_seconds:g} s", permanent=False)
        error = task.exception()
        return task.result() if error is None else _failure(error)

    async def _run_ended(self, run_id: str) -> None:
        """Return once the run has ended (cancelled, or failed in another branch), as the
        event hub tells: no polling."""
        subscription = await self.hub.subscribe(
            EventFilter(run_id=run_id, kinds=RUN_TERMINAL_KINDS, include_internal=True)
        )
        try:
            await subscription.queue.get()
        finally:
            self.hub.unsubscribe(subscription)


class NodeTimeoutHandler(RetryingHandler):
    """`workflow.node.timeout`: a node still waiting for input when its time is up gets the
    operation's decision. A node resumed first is no longer waiting, so this does nothing."""

    def __init__(
        self,
        db: Database,
        queue: WorkQueue,
        lifecycle: RunLifecycle,
        operations: OperationRegistry,
    ) -> None:
        super().__init__(db, queue)
        self.lifecycle = lifecycle
        self.operations = operations

    async def execute(self, item: WorkItem) -> None:
        async with self.db.write() as session:
            found = await self._load(session, item)
            if found is not None:
                run, node, nodes, due_at = found
                remaining = machine.seconds_until(due_at, utcnow())
                if remaining > 0:  # due early by another process's clock: wait the rest
                    await self.lifecycle.rearm_timeout(session, run, node, nodes, remaining)
                else:
                    operation = self.operations.get(node.operation)
                    writer = self.lifecycle.writer
                    prepared = _prepare(
                        run_snapshot(run),
                        writer.node_snapshot(node),
                        writer.node_snapshots(nodes),
                        run.created_by,
                    )
                    decision: dict[str, object] | str
                    try:
                        decision = operation.timed_out(prepared).output
                    except NodeError as exc:
                        decision = str(exc)
                    await self.lifecycle.time_out(session, run, node, nodes, decision)
            await self.queue.complete(session, item)

    async def on_failure(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        found = await self._load(session, item)
        if found is not None:
            run, node, nodes, _ = found
            await self.lifecycle.fail_node(session, run, node, nodes, error)

    async def _load(
        self, session: AsyncSession, item: WorkItem
    ) -> tuple[WorkflowRun, WorkflowNodeState, list[WorkflowNodeState], dt.datetime] | None:
        """The run, node and siblings, and when the node times out — None when it no longer
        waits with a time limit."""
        found = await _locked_node(session, item, (NodeStatus.WAITING,))
        if found is None:
            return None
        run, node, nodes = found
        snapshot = self.lifecycle.writer.node_snapshot(node)
        due_at = machine.timeout_due_at(run_snapshot(run), snapshot)
        return None if due_at is None else (run, node, nodes, due_at)


async def _locked_node(
    session: AsyncSession, item: WorkItem, statuses: Collection[NodeStatus]
) -> _Found | None:
    """The locked run of a node's work item, the node and its siblings — None when the run
    ended or the node is in none of `statuses` (there is nothing to do)."""
    run = await repository.lock_run(session, str(item.payload.get("run_id", "")))
    if run is None or run.status.is_terminal:
        return None
    nodes = await repository.nodes_of(session, run.id)
    node = next((n for n in nodes if n.id == item.ref_id), None)
    if node is None or node.status not in statuses:
        return None
    return run, node, nodes


def _prepare(
    run: RunSnapshot,
    node: NodeSnapshot,
    nodes: Sequence[NodeSnapshot],
    created_by: str | None,
    *,
    max_rendered_bytes: int = NodeLimits.rendered_bytes,
) -> NodeRun:
    """What the operation of `node` sees when it executes."""
    spec = run.graph[node.key]
    outputs = {n.key: n.output for n in nodes}
    return NodeRun(
        run_id=run.id,
        organization_id=run.organization_id,
        created_by=created_by,
        node_key=node.key,
        operation=node.operation,
        config=copy.deepcopy(dict(spec.config)),
        inputs=dict(node.input or {}),
        context=copy.deepcopy(dict(run.context)),
        upstream={dep: outputs.get(dep) for dep in spec.depends_on},
        attempt=node.attempts,
        timeout_seconds=float(spec.policy.timeout_seconds),
        node_outputs={
            key: copy.deepcopy(outputs[key])
            for key in run.graph.ancestors(node.key)
            if outputs.get(key) is not None
        },
        max_rendered_bytes=max_rendered_bytes,
    )


def _failure(error: BaseException) -> _Failure:
    if isinstance(error, NodeError):
        return _Failure(str(error), permanent=True)
    if isinstance(error, TransientNodeError):
        return _Failure(str(error), permanent=False)
    return _Failure(f"{type(error).__name__}: {error}", permanent=False)


def _definition_id(tx: Tx, org_id: str, spawn: SpawnChildren) -> str | None:
    """The definition child runs start from: by id or by name, in the run's organization."""
    query = select(DEFINITIONS.c.id).where(DEFINITIONS.c.organization_id == org_id)
    if spawn.definition_id:
        found = tx.conn.scalar(query.where(DEFINITIONS.c.id == spawn.definition_id))
    elif spawn.definition_name:
        found = tx.conn.scalar(query.where(DEFINITIONS.c.name == spawn.definition_name))
    else:
        found = None
    return found


def _finished_children(tx: Tx, run_id: str, node_key: str) -> list[ChildRun] | None:
    """The node's child runs in item order — or None while some are still running and none
    failed or was cancelled: every collecting operation waits for all of them then, and
    counting is much cheaper than reading a thousand rows on each child's end."""
    mine = (RUNS.c.parent_run_id == run_id) & (RUNS.c.parent_node_key == node_key)
    open_, unsuccessful = tx.conn.execute(
        select(
            func.count().filter(RUNS.c.status.not_in(TERMINAL_RUN_STATUSES)),
            func.count().filter(RUNS.c.status.in_((RunStatus.FAILED, RunStatus.CANCELLED))),
        ).where(mine)
    ).one()
    if open_ and not unsuccessful:
        return None
    rows = tx.conn.execute(
        select(RUNS.c.id, RUNS.c.status, RUNS.c.output, RUNS.c.context, RUNS.c.error)
        .where(mine)
        .order_by(RUNS.c.parent_index)
    )
    return [ChildRun(r.id, r.status, r.output, r.context, r.error) for r in rows]
