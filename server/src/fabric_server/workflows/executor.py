"""Work handlers that drive runs: start a run, execute or wake a node, cancel a child run,
time out a node waiting for input.

A node execution is two short transactions around the operation call, which holds no
database connection. The second transaction records the outcome only if the node is still
in the attempt that began (and the run was not cancelled meanwhile), and completes the work
item in the same transaction: a node re-executed after a crash cannot complete twice, and
a worker that lost its lease cannot record anything.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from collections.abc import Collection, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.budgets.service import BudgetService
from fabric_server.db.database import Database
from fabric_server.db.models import WorkItem
from fabric_server.db.types import utcnow
from fabric_server.engine.handler import RetryingHandler
from fabric_server.engine.queue import WorkQueue
from fabric_server.workflows import machine, repository
from fabric_server.workflows.lifecycle import RunLifecycle
from fabric_server.workflows.machine import NodeWork
from fabric_server.workflows.models import WorkflowNodeState, WorkflowRun
from fabric_server.workflows.node_state import AwaitingChildren, Sleeping
from fabric_server.workflows.nodes import OperationRegistry
from fabric_server.workflows.nodes.base import (
    ChildRun,
    Completed,
    NodeError,
    NodeRun,
    Outcome,
    Sleep,
    SpawnChildren,
    TransientNodeError,
    WaitForInput,
)
from fabric_server.workflows.status import NodeStatus, RunStatus
from fabric_server.workflows.writer import run_snapshot

_Found = tuple[WorkflowRun, WorkflowNodeState, list[WorkflowNodeState]]


class _Failure:
    """An operation that raised: permanent (`NodeError`) or worth retrying."""

    def __init__(self, error: str, *, permanent: bool) -> None:
        self.error = error
        self.permanent = permanent


class _Interrupted:
    """The run ended while the operation was running; its result is not wanted."""


class _RunHandler(RetryingHandler):
    """A run-level step; should it keep failing unexpectedly, the run fails with the error."""

    def __init__(self, db: Database, queue: WorkQueue, lifecycle: RunLifecycle) -> None:
        super().__init__(db, queue)
        self.lifecycle = lifecycle

    async def on_failure(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        run = await repository.lock_run(session, item.ref_id or "")
        if run is not None and not run.status.is_terminal:
            nodes = await repository.nodes_of(session, run.id)
            await self.lifecycle.fail_run(session, run, nodes, f"{item.kind} failed: {error}")


class RunStartHandler(_RunHandler):
    """`workflow.run.start`: the run begins and its root nodes become ready."""

    async def execute(self, item: WorkItem) -> None:
        async with self.db.write() as session:
            run = await repository.lock_run(session, item.ref_id or "")
            if run is not None and run.status == RunStatus.PENDING:
                nodes = await repository.nodes_of(session, run.id)
                await self.lifecycle.start_run(session, run, nodes)
            await self.queue.complete(session, item)


class RunCancelHandler(_RunHandler):
    """`workflow.run.cancel`: a child run whose parent ended is cancelled."""

    async def execute(self, item: WorkItem) -> None:
        async with self.db.write() as session:
            run = await repository.lock_run(session, item.ref_id or "")
            if run is not None and not run.status.is_terminal:
                nodes = await repository.nodes_of(session, run.id)
                reason = f"parent run {run.parent_run_id} ended"
                await self.lifecycle.cancel_run(session, run, nodes, reason)
            await self.queue.complete(session, item)


class NodeHandler(RetryingHandler):
    """`workflow.node`: execute a ready node, wake a sleeping one, or collect child runs."""

    def __init__(
        self,
        db: Database,
        queue: WorkQueue,
        lifecycle: RunLifecycle,
        operations: OperationRegistry,
        budgets: BudgetService,
        *,
        watch_interval: float,
    ) -> None:
        super().__init__(db, queue)
        self.lifecycle = lifecycle
        self.operations = operations
        self.budgets = budgets
        self.watch_interval = watch_interval

    async def execute(self, item: WorkItem) -> None:
        async with self.db.write() as session:
            found = await self._load(session, item)
            work = NodeWork.NOTHING if found is None else self._work(*found[:2])
            if found is None or work is NodeWork.NOTHING:
                await self.queue.complete(session, item)
                return
            run, node, nodes = found
            if work is not NodeWork.EXECUTE:
                await self._resume_step(session, item, run, node, nodes)
                return
            await self.lifecycle.begin_attempt(session, run, node, nodes)
            prepared = prepare(run, node, nodes, dict(node.input or {}))
            attempt = node.attempts

        outcome = await self._execute(prepared)

        async with self.db.write() as session:
            found = await self._load(session, item)
            if found is None or not self._owns(*found[:2], attempt):
                await self.queue.complete(session, item)  # the run ended or moved on
                return
            run, node, nodes = found
            if isinstance(outcome, _Failure):
                await self.lifecycle.record_failure(
                    session, run, node, nodes, outcome.error, permanent=outcome.permanent
                )
            elif not isinstance(outcome, _Interrupted):  # (the run ended: `_load` said so)
                await self._record(session, run, node, nodes, outcome)
            await self.queue.complete(session, item)

    async def on_failure(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        """The node's work item kept failing or being interrupted: the node fails."""
        found = await self._load(session, item)
        if found is not None:
            run, node, nodes = found
            await self.lifecycle.fail_node(session, run, node, nodes, error)

    async def _load(self, session: AsyncSession, item: WorkItem) -> _Found | None:
        return await _locked_node(session, item, (NodeStatus.READY, NodeStatus.RUNNING))

    def _work(self, run: WorkflowRun, node: WorkflowNodeState) -> NodeWork:
        return machine.node_work(run_snapshot(run), self.lifecycle.writer.node_snapshot(node))

    def _owns(self, run: WorkflowRun, node: WorkflowNodeState, attempt: int) -> bool:
        snapshot = self.lifecycle.writer.node_snapshot(node)
        return machine.owns_attempt(run_snapshot(run), snapshot, attempt)

    async def _execute(self, node: NodeRun) -> Outcome | _Failure | _Interrupted:
        """Run the operation under its timeout, abandoning it if the run ends meanwhile."""
        operation = self.operations.get(node.operation)
        task = asyncio.create_task(operation.run(node))
        watcher = asyncio.create_task(self._watch_run(node.run_id))
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
        if error is None:
            return task.result()
        if isinstance(error, NodeError):
            return _Failure(str(error), permanent=True)
        if isinstance(error, TransientNodeError):
            return _Failure(str(error), permanent=False)
        return _Failure(f"{type(error).__name__}: {error}", permanent=False)

    async def _watch_run(self, run_id: str) -> None:
        """Return once the run has ended (cancelled, or failed in another branch)."""
        while True:
            await asyncio.sleep(self.watch_interval)
            async with self.db.read() as session:
                run = await repository.get_run(session, run_id)
                if run is None or run.status.is_terminal:
                    return

    async def _record(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: list[WorkflowNodeState],
        outcome: Outcome,
    ) -> None:
        lifecycle = self.lifecycle
        match outcome:
            case Completed(output, context_patch, usage):
                # The call happened, whatever becomes of its output. Recorded before any
                # event of this transaction (budget row lock first, then the event-order lock).
                await self.budgets.record_usage(session, usage)
                await lifecycle.succeed(session, run, node, nodes, output, context_patch)
            case WaitForInput(prompt, timeout_seconds):
                await lifecycle.wait_for_input(session, run, node, nodes, prompt, timeout_seconds)
            case Sleep(seconds):
                await lifecycle.sleep(session, run, node, nodes, seconds)
            case SpawnChildren():
                await lifecycle.spawn_children(session, run, node, nodes, outcome)

    async def _resume_step(
        self,
        session: AsyncSession,
        item: WorkItem,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: list[WorkflowNodeState],
    ) -> None:
        """A sleeping node woke up, or a child run it waits for moved on."""
        operation = self.operations.get(node.operation)
        prepared = prepare(run, node, nodes, dict(node.input or {}))
        outcome: Outcome | None = None
        try:
            match node.state:
                case Sleeping(wake_at):
                    remaining = machine.seconds_until(wake_at, utcnow())
                    if remaining > 0:  # due early by another process's clock
                        await self.lifecycle.keep_sleeping(session, run, node, nodes, remaining)
                    else:
                        outcome = operation.wake(prepared, node.state)
                case AwaitingChildren():
                    children = await repository.children_of(session, run.id)
                    mine = [_child(c) for c in children if c.parent_node_key == node.node_key]
                    outcome = operation.collect(prepared, mine)
        except NodeError as exc:
            await self.lifecycle.fail_node(session, run, node, nodes, str(exc))
        if outcome is not None:
            await self._record(session, run, node, nodes, outcome)
        await self.queue.complete(session, item)


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
                    prepared = prepare(run, node, nodes, dict(node.input or {}))
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


def prepare(
    run: WorkflowRun,
    node: WorkflowNodeState,
    nodes: Sequence[WorkflowNodeState],
    inputs: dict[str, object],
) -> NodeRun:
    """What the operation of `node` sees when it executes."""
    spec = run.graph[node.node_key]
    outputs = {n.node_key: n.output for n in nodes}
    return NodeRun(
        run_id=run.id,
        organization_id=run.organization_id,
        created_by=run.created_by,
        node_key=node.node_key,
        operation=node.operation,
        config=copy.deepcopy(dict(spec.config)),
        inputs=inputs,
        context=copy.deepcopy(run.context),
        upstream={dep: outputs.get(dep) for dep in spec.depends_on},
        attempt=node.attempts,
        timeout_seconds=float(spec.policy.timeout_seconds),
        node_outputs={
            key: copy.deepcopy(outputs[key])
            for key in run.graph.ancestors(node.node_key)
            if outputs.get(key) is not None
        },
    )


def _child(run: WorkflowRun) -> ChildRun:
    return ChildRun(run.id, run.status, run.output, run.context, run.error)
