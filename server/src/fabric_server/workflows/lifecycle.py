"""The state machine of runs and nodes: every transition, its event, and the work it queues.

Callers hold the run's row lock (`repository.lock_run`) and pass the run's node states; each
method changes rows, records events and enqueues work in the caller's transaction, so a
transition and its consequences commit together or not at all.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.types import utcnow
from fabric_server.engine.queue import WorkQueue
from fabric_server.events.outbox import EventRecorder
from fabric_server.workflows import repository
from fabric_server.workflows.bindings import BindingError, apply_outputs, deep_merge
from fabric_server.workflows.launch import (
    NODE_TIMEOUT_KIND,
    NODE_WORK_KIND,
    RUN_CANCEL_KIND,
    RUN_START_KIND,
    WORK_ATTEMPTS,
    RunLauncher,
    record_run_event,
)
from fabric_server.workflows.models import WorkflowDefinition, WorkflowNodeState, WorkflowRun
from fabric_server.workflows.nodes import OperationRegistry
from fabric_server.workflows.schemas import TERMINAL_RUN_STATUSES

FINISHED_NODE_STATUSES = ("completed", "failed", "skipped")


class RunLifecycle:
    def __init__(
        self,
        queue: WorkQueue,
        events: EventRecorder,
        operations: OperationRegistry,
        launcher: RunLauncher,
    ) -> None:
        self.queue = queue
        self.events = events
        self.operations = operations
        self.launcher = launcher

    async def start_run(
        self, session: AsyncSession, run: WorkflowRun, nodes: Sequence[WorkflowNodeState]
    ) -> None:
        run.status = "running"
        run.started_at = utcnow()
        await self._run_event(session, run, "workflow.run.started", {})
        await self._advance(session, run, nodes)

    # -- node transitions --------------------------------------------------------------------

    def spec(self, run: WorkflowRun, node_key: str) -> dict[str, Any]:
        """The node's definition as this run executes it."""
        return next(node for node in run.graph if node["key"] == node_key)

    async def begin_attempt(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        inputs: dict[str, Any],
    ) -> None:
        node.status = "running"
        node.attempts += 1
        node.input = inputs
        node.started_at = node.started_at or utcnow()
        await self._node_event(
            session,
            run,
            node,
            "workflow.node.started",
            {"operation": node.operation, "attempt": node.attempts, "input": inputs},
        )

    async def complete_node(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: Sequence[WorkflowNodeState],
        output: dict[str, Any],
        context_patch: Mapping[str, Any] | None = None,
    ) -> None:
        """Record the output, bind it into the context, then ready what it unblocked.

        Raises BindingError (changing nothing) when an output binding names a missing field.
        """
        spec = self.spec(run, node.node_key)
        context = deep_merge(run.context, context_patch or {})
        if spec["outputs"]:
            apply_outputs(context, spec["outputs"], output)
        elif self.operations.get(node.operation).writes_output:
            context[node.node_key] = output
        run.context = context
        node.status = "completed"
        node.output = output
        node.error = None
        node.completed_at = utcnow()
        await self._node_event(
            session,
            run,
            node,
            "workflow.node.completed",
            {"output": output, "attempts": node.attempts},
        )
        await self._advance(session, run, nodes)

    async def wait_for_input(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        prompt: str | None,
        timeout_seconds: float | None = None,
    ) -> None:
        """The node waits for `resume`; with a timeout, a `NODE_TIMEOUT_KIND` work item due
        then decides for it. A paused run stays paused."""
        node.status = "waiting"
        node.state = {**node.state, "prompt": prompt}
        payload: dict[str, Any] = {"prompt": prompt}
        if timeout_seconds is not None:
            timeout_at = utcnow() + dt.timedelta(seconds=timeout_seconds)
            node.state = {
                **node.state,
                "timeout_seconds": timeout_seconds,
                "timeout_at": timeout_at.isoformat(),
            }
            payload["timeout_at"] = timeout_at.isoformat()
            await self.arm_timeout(session, run, node, timeout_seconds)
        await self._node_event(session, run, node, "workflow.node.waiting", payload)
        if run.status == "running":
            run.status = "waiting"
            await self._run_event(
                session, run, "workflow.run.waiting", {"prompt": prompt}, node.node_key
            )

    async def arm_timeout(
        self, session: AsyncSession, run: WorkflowRun, node: WorkflowNodeState, seconds: float
    ) -> None:
        """Queue the node's time-out, due in `seconds`."""
        await self.queue.enqueue(
            session,
            NODE_TIMEOUT_KIND,
            ref_id=node.id,
            organization_id=run.organization_id,
            payload={"run_id": run.id},
            priority=run.priority,
            max_attempts=WORK_ATTEMPTS,
            delay_seconds=seconds,
        )

    async def resume(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: Sequence[WorkflowNodeState],
        data: dict[str, Any],
    ) -> None:
        """Complete a waiting node with `data`; the run runs again once nothing waits.

        Raises BindingError (changing nothing) when `data` lacks a field the node binds.
        """
        self.check_output(run, node, data)
        others_wait = any(n.status == "waiting" and n.id != node.id for n in nodes)
        if run.status == "waiting" and not others_wait:
            run.status = "running"
            await self._run_event(session, run, "workflow.run.resumed", {}, node.node_key)
        await self.queue.cancel_pending(session, NODE_TIMEOUT_KIND, node.id)
        await self.complete_node(session, run, node, nodes, data)

    def check_output(
        self, run: WorkflowRun, node: WorkflowNodeState, output: dict[str, Any]
    ) -> None:
        """Raise BindingError if `output` lacks a field the node's `outputs` bind."""
        spec = self.spec(run, node.node_key)
        if spec["outputs"]:
            apply_outputs(copy.deepcopy(run.context), spec["outputs"], output)

    async def time_out(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: Sequence[WorkflowNodeState],
        decision: dict[str, Any] | str,
    ) -> None:
        """A waiting node ran out of time: complete it with the `decision` output as if it
        had been resumed with it, or fail it with the `decision` error message."""
        await self._node_event(
            session,
            run,
            node,
            "workflow.node.timed_out",
            {"timeout_seconds": node.state.get("timeout_seconds")},
        )
        if isinstance(decision, str):
            await self.fail_node(session, run, node, nodes, decision)
            return
        try:
            await self.resume(session, run, node, nodes, decision)
        except BindingError as exc:
            await self.fail_node(session, run, node, nodes, str(exc))

    # -- run transitions ---------------------------------------------------------------------

    async def pause_run(self, session: AsyncSession, run: WorkflowRun, reason: str | None) -> None:
        """Hold the run: from now on no node is dispatched. Nodes already executing (or
        sleeping, waiting for input or for child runs) carry on and their outcome is recorded
        — a failure still fails the run, the last completion completes it — but what they
        unblock stays `pending` until `resume_run`. Work items of nodes that were ready stay
        queued and do nothing while the run is paused."""
        run.status = "paused"
        await self._run_event(session, run, "workflow.run.paused", {"reason": reason})

    async def resume_run(
        self, session: AsyncSession, run: WorkflowRun, nodes: Sequence[WorkflowNodeState]
    ) -> None:
        """Undo `pause_run`: dispatch every node that is ready or became ready meanwhile."""
        if run.started_at is None:
            run.status = "pending"
        elif any(node.status == "waiting" for node in nodes):
            run.status = "waiting"
        else:
            run.status = "running"
        await self._run_event(session, run, "workflow.run.resumed", {"status": run.status})
        if run.started_at is None:
            if run.queued_at is not None and not await self.queue.open_refs(
                session, RUN_START_KIND, [run.id]
            ):
                await self.launcher.enqueue_start(session, run)
            return
        ready = [node for node in nodes if node.status == "ready"]
        queued = await self.queue.open_refs(session, NODE_WORK_KIND, [n.id for n in ready])
        for node in ready:
            if node.id not in queued:  # its item came up while paused, and did nothing
                await self._enqueue_node(session, run, node)
        await self._advance(session, run, nodes)

    async def retry_later(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        error: str,
        delay: float,
    ) -> None:
        node.status = "ready"
        node.error = error
        await self._node_event(
            session,
            run,
            node,
            "workflow.node.retrying",
            {"error": error, "attempt": node.attempts, "retry_in_seconds": round(delay, 3)},
        )
        await self._enqueue_node(session, run, node, delay)

    async def sleep(
        self, session: AsyncSession, run: WorkflowRun, node: WorkflowNodeState, seconds: float
    ) -> None:
        """Stay `running` and wake after `seconds` through a work item due then."""
        wake_at = utcnow() + dt.timedelta(seconds=seconds)
        node.state = {"wake_at": wake_at.isoformat(), "sleep_seconds": seconds}
        await self._enqueue_node(session, run, node, seconds)

    async def sleep_again(
        self, session: AsyncSession, run: WorkflowRun, node: WorkflowNodeState, seconds: float
    ) -> None:
        await self._enqueue_node(session, run, node, seconds)

    async def spawn_children(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        definition: WorkflowDefinition,
        contexts: list[dict[str, Any]],
    ) -> list[WorkflowRun]:
        """Create and queue one child run per context; the node waits for them."""
        children = []
        for index, context in enumerate(contexts):
            child = await self.launcher.create_run(
                session,
                definition,
                context=context,
                created_by=run.created_by,
                priority=run.priority,
                parent=(run, node.node_key, index),
            )
            await self.launcher.queue_run(session, child)
            children.append(child)
        node.state = {"children": [child.id for child in children]}
        return children

    async def fail_node(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        nodes: Sequence[WorkflowNodeState],
        error: str,
    ) -> None:
        """Fail the node and with it the run."""
        node.status = "failed"
        node.error = error
        node.completed_at = utcnow()
        await self._node_event(
            session, run, node, "workflow.node.failed", {"error": error, "attempts": node.attempts}
        )
        await self.fail_run(session, run, nodes, f"node {node.node_key} failed: {error}", node)

    async def fail_run(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        nodes: Sequence[WorkflowNodeState],
        error: str,
        failed: WorkflowNodeState | None = None,
    ) -> None:
        """End the run as failed: unfinished nodes are skipped, child runs cancelled."""
        downstream = _downstream(run.graph, failed.node_key) if failed else set()
        for other in nodes:
            if other.status not in FINISHED_NODE_STATUSES:
                reason = (
                    f"upstream node {failed.node_key} failed"
                    if failed and other.node_key in downstream
                    else "the run failed"
                )
                await self._skip(session, run, other, reason)
        run.status = "failed"
        run.error = error
        run.completed_at = utcnow()
        await self._run_event(
            session,
            run,
            "workflow.run.failed",
            {"error": error},
            failed.node_key if failed else None,
        )
        await self._after_end(session, run)

    async def cancel_run(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        nodes: Sequence[WorkflowNodeState],
        reason: str | None,
    ) -> None:
        """Stop the run: unfinished nodes are skipped, queued work is withdrawn, a running
        node's result will be discarded, and child runs are cancelled in turn."""
        for node in nodes:
            if node.status not in FINISHED_NODE_STATUSES:
                await self._skip(session, run, node, "the run was cancelled")
        await self.queue.cancel_pending(session, RUN_START_KIND, run.id)
        run.status = "cancelled"
        run.completed_at = utcnow()
        await self._run_event(session, run, "workflow.run.cancelled", {"reason": reason})
        await self._after_end(session, run)

    # -- internals ---------------------------------------------------------------------------

    async def _advance(
        self, session: AsyncSession, run: WorkflowRun, nodes: Sequence[WorkflowNodeState]
    ) -> None:
        """Ready every pending node whose dependencies completed (unless the run is paused);
        complete a finished run."""
        by_key = {node.node_key: node for node in nodes}
        if run.status != "paused":  # a paused run dispatches nothing until `resume_run`
            for spec in run.graph:
                node = by_key[spec["key"]]
                if node.status == "pending" and all(
                    by_key[dep].status == "completed" for dep in spec["depends_on"]
                ):
                    node.status = "ready"
                    await self._node_event(
                        session, run, node, "workflow.node.ready", {"operation": node.operation}
                    )
                    await self._enqueue_node(session, run, node)
        if all(node.status == "completed" for node in nodes):
            upstream = {dep for spec in run.graph for dep in spec["depends_on"]}
            run.output = {n.node_key: n.output for n in nodes if n.node_key not in upstream}
            run.status = "completed"
            run.completed_at = utcnow()
            await self._run_event(session, run, "workflow.run.completed", {"output": run.output})
            await self._after_end(session, run)

    async def _skip(
        self, session: AsyncSession, run: WorkflowRun, node: WorkflowNodeState, reason: str
    ) -> None:
        node.status = "skipped"
        node.completed_at = utcnow()
        await self._node_event(session, run, node, "workflow.node.skipped", {"reason": reason})
        await self.queue.cancel_pending(session, NODE_WORK_KIND, node.id)
        await self.queue.cancel_pending(session, NODE_TIMEOUT_KIND, node.id)

    async def _after_end(self, session: AsyncSession, run: WorkflowRun) -> None:
        """A run ended: cancel its unfinished children, wake the parent node waiting on it.

        Both go through the queue, so this transaction never locks a second run.
        """
        children = await session.scalars(
            select(WorkflowRun.id).where(
                WorkflowRun.parent_run_id == run.id,
                WorkflowRun.status.not_in(TERMINAL_RUN_STATUSES),
            )
        )
        for child_id in children:
            await self.queue.enqueue(
                session,
                RUN_CANCEL_KIND,
                ref_id=child_id,
                organization_id=run.organization_id,
                priority=run.priority,
                max_attempts=WORK_ATTEMPTS,
            )
        if run.parent_run_id and run.parent_node_key:
            node_id = await repository.node_state_id(
                session, run.parent_run_id, run.parent_node_key
            )
            if node_id is not None:
                await self.queue.enqueue(
                    session,
                    NODE_WORK_KIND,
                    ref_id=node_id,
                    organization_id=run.organization_id,
                    payload={"run_id": run.parent_run_id},
                    priority=run.priority,
                    max_attempts=WORK_ATTEMPTS,
                )

    async def _enqueue_node(
        self, session: AsyncSession, run: WorkflowRun, node: WorkflowNodeState, delay: float = 0
    ) -> None:
        await self.queue.enqueue(
            session,
            NODE_WORK_KIND,
            ref_id=node.id,
            organization_id=run.organization_id,
            payload={"run_id": run.id},
            priority=run.priority,
            max_attempts=WORK_ATTEMPTS,
            delay_seconds=delay,
        )

    async def _run_event(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        kind: str,
        payload: dict[str, Any],
        node_key: str | None = None,
    ) -> None:
        await record_run_event(self.events, session, run, kind, payload, node_key)

    async def _node_event(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        node: WorkflowNodeState,
        kind: str,
        payload: dict[str, Any],
    ) -> None:
        await self._run_event(session, run, kind, payload, node.node_key)


def _downstream(graph: Sequence[Mapping[str, Any]], key: str) -> set[str]:
    """Every node that depends on `key`, directly or through others."""
    found: set[str] = set()
    frontier = {key}
    while frontier:
        frontier = {
            node["key"]
            for node in graph
            if node["key"] not in found and frontier & set(node["depends_on"])
        }
        found |= frontier
    return found
