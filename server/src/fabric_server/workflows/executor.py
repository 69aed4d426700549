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
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.budgets.service import BudgetService
from fabric_server.db.database import Database
from fabric_server.db.models import WorkItem
from fabric_server.db.types import utcnow
from fabric_server.engine.handler import RetryingHandler
from fabric_server.engine.queue import WorkQueue
from fabric_server.workflows import repository
from fabric_server.workflows.bindings import BindingError, resolve_inputs
from fabric_server.workflows.graph import upstream_of
from fabric_server.workflows.lifecycle import RunLifecycle
from fabric_server.workflows.models import WorkflowDefinition, WorkflowNodeState, WorkflowRun
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
from fabric_server.workflows.schemas import TERMINAL_RUN_STATUSES

MAX_NESTING = 8

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
        if run is not None and run.status not in TERMINAL_RUN_STATUSES:
            nodes = await repository.nodes_of(session, run.id)
            await self.lifecycle.fail_run(session, run, nodes, f"{item.kind} failed: {error}")


class RunStartHandler(_RunHandler):
    """`workflow.run.start`: the run begins and its root nodes become ready."""

    async def execute(self, item: WorkItem) -> None:
        async with self.db.write() as session:
            run = await repository.lock_run(session, item.ref_id or "")
            if run is not None and run.status == "pending":
                nodes = await repository.nodes_of(session, run.id)
                await self.lifecycle.start_run(session, run, nodes)
            await self.queue.complete(session, item)


class RunCancelHandler(_RunHandler):
    """`workflow.run.cancel`: a child run whose parent ended is cancelled."""

    async def execute(self, item: WorkItem) -> None:
        async with self.db.write() as session:
            run = await repository.lock_run(session, item.ref_id or "")
            if run is not None and run.status not in TERMINAL_RUN_STATUSES:
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
            if found is None:
                await self.queue.complete(session, item)
                return
            run, node, nodes = found
            if run.status == "paused" and node.status == "ready":
                # Dispatched before the pause: do nothing; resuming the run queues it again.
                await self.queue.complete(session, item)
                return
            if "children" in node.state or "wake_at" in node.state:
                await self._resume_step(session, item, run, node, nodes)
                return
            spec = self.lifecycle.spec(run, node.node_key)
            inputs = resolve_inputs(run.context, spec["inputs"])
            await self.lifecycle.begin_attempt(session, run, node, inputs)
            prepared = prepare(self.lifecycle, run, node, nodes, inputs)
            attempt = node.attempts

        outcome = await self._execute(prepared)

        async with self.db.write() as session:
            found = await self._load(session, item)
            if found is None or found[1].status != "running" or found[1].attempts != attempt:
                await self.queue.complete(session, item)  # the run ended or moved on
                return
            run, node, nodes = found
            if isinstance(outcome, _Failure):
                await self._record_failure(session, run, node, nodes, outcome)
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
        return await _locked_node(session, item, ("ready", "running"))

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
                if run is None or run.status in TERMINAL_RUN_STATUSES:
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
        if isinstance(outcome, Completed):
            # The call happened, whatever becomes of its output. Recorded before any event
            # of this transaction (budget row lock first, then the event-order lock).
            await self.budgets.record_usage(session, outcome.usage)
            try:
                await lifecycle.complete_node(
                    session, run, node, nodes, outcome.output, outcome.context_patch
                )
            except BindingError as exc:
                await lifecycle.fail_node(session, run, node, nodes, str(exc))
        elif isinstance(outcome, WaitForInput):
            await lifecycle.wait_for_input(
                session, run, node, outcome.prompt, outcome.timeout_seconds
            )
        elif isinstance(outcome, Sleep):
            await lifecycle.sleep(session, run, node, outcome.seconds)
        elif isinstance(outcome, SpawnChildren):
            await self._spawn(session, run, node, nodes, outcome)

    async def _record_failure(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: list[WorkflowNodeState],
        failure: _Failure,
    ) -> None:
        max_retries = int(self.lifecycle.spec(run, node.node_key)["policy"]["max_retries"])
        if failure.permanent or node.attempts > max_retries:
            await self.lifecycle.fail_node(session, run, node, nodes, failure.error)
        else:
            delay = self.queue.retry.delay(node.attempts)
            await self.lifecycle.retry_later(session, run, node, failure.error, delay)

    async def _spawn(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: list[WorkflowNodeState],
        spawn: SpawnChildren,
    ) -> None:
        definition = await _find_definition(session, run.organization_id, spawn)
        if definition is None:
            wanted = spawn.definition_id or spawn.definition_name
            await self.lifecycle.fail_node(
                session, run, node, nodes, f"workflow definition {wanted!r} was not found"
            )
        elif run.depth + 1 > MAX_NESTING:
            await self.lifecycle.fail_node(
                session, run, node, nodes, f"child runs nest deeper than {MAX_NESTING} levels"
            )
        else:
            await self.lifecycle.spawn_children(session, run, node, definition, spawn.contexts)

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
        prepared = prepare(self.lifecycle, run, node, nodes, dict(node.input or {}))
        try:
            if "wake_at" in node.state:
                remaining = _seconds_until(node.state["wake_at"])
                if remaining > 0:
                    await self.lifecycle.sleep_again(session, run, node, remaining)
                    outcome = None
                else:
                    outcome = operation.wake(prepared, node.state)
            else:
                children = await repository.children_of(session, run.id)
                mine = [_child(c) for c in children if c.parent_node_key == node.node_key]
                outcome = operation.collect(prepared, mine)
        except NodeError as exc:
            await self.lifecycle.fail_node(session, run, node, nodes, str(exc))
            outcome = None
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
                run, node, nodes = found
                remaining = _seconds_until(node.state["timeout_at"])
                if remaining > 0:  # due early by another process's clock: wait the rest
                    await self.lifecycle.arm_timeout(session, run, node, remaining)
                else:
                    operation = self.operations.get(node.operation)
                    prepared = prepare(self.lifecycle, run, node, nodes, dict(node.input or {}))
                    try:
                        outcome = operation.timed_out(prepared)
                    except NodeError as exc:
                        await self.lifecycle.time_out(session, run, node, nodes, str(exc))
                    else:
                        await self.lifecycle.time_out(session, run, node, nodes, outcome.output)
            await self.queue.complete(session, item)

    async def on_failure(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        found = await self._load(session, item)
        if found is not None:
            run, node, nodes = found
            await self.lifecycle.fail_node(session, run, node, nodes, error)

    async def _load(self, session: AsyncSession, item: WorkItem) -> _Found | None:
        found = await _locked_node(session, item, ("waiting",))
        return found if found is not None and "timeout_at" in found[1].state else None


async def _locked_node(
    session: AsyncSession, item: WorkItem, statuses: tuple[str, ...]
) -> _Found | None:
    """The locked run of a node's work item, the node and its siblings — None when the run
    ended or the node is in none of `statuses` (there is nothing to do)."""
    run = await repository.lock_run(session, str(item.payload.get("run_id", "")))
    if run is None or run.status in TERMINAL_RUN_STATUSES:
        return None
    nodes = await repository.nodes_of(session, run.id)
    node = next((n for n in nodes if n.id == item.ref_id), None)
    if node is None or node.status not in statuses:
        return None
    return run, node, nodes


def prepare(
    lifecycle: RunLifecycle,
    run: WorkflowRun,
    node: WorkflowNodeState,
    nodes: Sequence[WorkflowNodeState],
    inputs: dict[str, object],
) -> NodeRun:
    """What the operation of `node` sees when it executes."""
    spec = lifecycle.spec(run, node.node_key)
    outputs = {n.node_key: n.output for n in nodes}
    return NodeRun(
        run_id=run.id,
        organization_id=run.organization_id,
        created_by=run.created_by,
        node_key=node.node_key,
        operation=node.operation,
        config=copy.deepcopy(spec["config"]),
        inputs=inputs,
        context=copy.deepcopy(run.context),
        upstream={dep: outputs.get(dep) for dep in spec["depends_on"]},
        attempt=node.attempts,
        timeout_seconds=float(spec["policy"]["timeout_seconds"]),
        node_outputs={
            key: copy.deepcopy(outputs[key])
            for key in upstream_of(run.graph, node.node_key)
            if outputs.get(key) is not None
        },
    )


async def _find_definition(
    session: AsyncSession, org_id: str, spawn: SpawnChildren
) -> WorkflowDefinition | None:
    if spawn.definition_id:
        found = await repository.get_definition(session, spawn.definition_id)
        return found if found is not None and found.organization_id == org_id else None
    if spawn.definition_name:
        return await repository.definition_by_name(session, org_id, spawn.definition_name)
    return None


def _child(run: WorkflowRun) -> ChildRun:
    return ChildRun(run.id, run.status, run.output, run.context, run.error)


def _seconds_until(moment: str) -> float:
    return (dt.datetime.fromisoformat(moment) - utcnow()).total_seconds()
