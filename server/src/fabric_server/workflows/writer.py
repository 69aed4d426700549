"""Applying the state machine's decisions through the ORM, in the caller's transaction.

Rows become snapshots (`run_snapshot`, `node_snapshots`); a decided `Step` is written back
field by field and its effects performed in order. Row changes are written first, so they
are flushed — and their row locks taken — before the first event takes the event-order lock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.engine.queue import WorkQueue
from fabric_server.events.outbox import EventRecorder
from fabric_server.workflows import repository
from fabric_server.workflows.effects import (
    NODE_WORK_KIND,
    RUN_CANCEL_KIND,
    WORK_ATTEMPTS,
    CancelChildRuns,
    CancelQueued,
    Effect,
    Enqueue,
    RecordEvent,
    StartChildRuns,
    WakeParentNode,
)
from fabric_server.workflows.models import WorkflowNodeState, WorkflowRun
from fabric_server.workflows.nodes import OperationRegistry
from fabric_server.workflows.snapshots import NodeSnapshot, RunSnapshot, Step

Spawn = Callable[[AsyncSession, StartChildRuns], Awaitable[None]]

_RUN_FIELDS = (
    "status",
    "context",
    "output",
    "error",
    "priority",
    "queued_at",
    "started_at",
    "completed_at",
)
_NODE_FIELDS = (
    "status",
    "attempts",
    "state",
    "input",
    "output",
    "error",
    "started_at",
    "completed_at",
)


def run_snapshot(run: WorkflowRun) -> RunSnapshot:
    return RunSnapshot(
        id=run.id,
        organization_id=run.organization_id,
        status=run.status,
        graph=run.graph,
        context=run.context,
        priority=run.priority,
        depth=run.depth,
        parent_run_id=run.parent_run_id,
        parent_node_key=run.parent_node_key,
        output=run.output,
        error=run.error,
        queued_at=run.queued_at,
        started_at=run.started_at,
        completed_at=run.completed_at,
    )


class StepWriter:
    """Turns rows into snapshots, and writes decided steps back."""

    def __init__(
        self, queue: WorkQueue, events: EventRecorder, operations: OperationRegistry
    ) -> None:
        self.queue = queue
        self.events = events
        self.operations = operations

    def node_snapshot(self, node: WorkflowNodeState) -> NodeSnapshot:
        return NodeSnapshot(
            id=node.id,
            key=node.node_key,
            operation=node.operation,
            status=node.status,
            attempts=node.attempts,
            state=node.state,
            input=node.input,
            output=node.output,
            error=node.error,
            started_at=node.started_at,
            completed_at=node.completed_at,
            writes_output=self.operations.get(node.operation).writes_output,
        )

    def node_snapshots(self, nodes: Sequence[WorkflowNodeState]) -> list[NodeSnapshot]:
        return [self.node_snapshot(node) for node in nodes]

    async def apply(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        nodes: Sequence[WorkflowNodeState],
        step: Step,
        spawn: Spawn | None = None,
    ) -> None:
        """Write `step` to the rows, then perform its effects in order (`spawn` starts child
        runs, when the step may ask for them)."""
        _copy_changes(step.run, run, _RUN_FIELDS)
        rows = {node.id: node for node in nodes}
        for snapshot in step.nodes:
            _copy_changes(snapshot, rows[snapshot.id], _NODE_FIELDS)
        for effect in step.effects:
            if isinstance(effect, StartChildRuns):
                if spawn is None:
                    raise RuntimeError("this step starts child runs, but no spawner was given")
                await spawn(session, effect)
            else:
                await self.perform(session, effect)

    async def perform(self, session: AsyncSession, effect: Effect) -> None:
        match effect:
            case RecordEvent(kind, organization_id, run_id, node_key, payload):
                await self.events.record(
                    session,
                    kind,
                    organization_id=organization_id,
                    run_id=run_id,
                    node_key=node_key,
                    payload=payload,
                )
            case Enqueue():
                await self.queue.enqueue(
                    session,
                    effect.kind,
                    ref_id=effect.ref_id,
                    organization_id=effect.organization_id,
                    payload=effect.payload,
                    priority=effect.priority,
                    max_attempts=effect.max_attempts,
                    delay_seconds=effect.delay_seconds,
                    local=True,  # this process's worker takes it, when it has room
                )
            case CancelQueued(kind, ref_id):
                await self.queue.cancel_pending(session, kind, ref_id)
            case CancelChildRuns(run_id, organization_id, priority):
                for child_id in await repository.unfinished_children(session, run_id):
                    await self.queue.enqueue(
                        session,
                        RUN_CANCEL_KIND,
                        ref_id=child_id,
                        organization_id=organization_id,
                        priority=priority,
                        max_attempts=WORK_ATTEMPTS,
                    )
            case WakeParentNode(parent_run_id, parent_node_key, organization_id, priority):
                node_id = await repository.node_state_id(session, parent_run_id, parent_node_key)
                if node_id is not None:
                    await self.queue.enqueue(
                        session,
                        NODE_WORK_KIND,
                        ref_id=node_id,
                        organization_id=organization_id,
                        payload={"run_id": parent_run_id},
                        priority=priority,
                        max_attempts=WORK_ATTEMPTS,
                    )
            case StartChildRuns():
                raise RuntimeError("child runs are started by `apply` with a spawner")


def _copy_changes(snapshot: Any, row: Any, fields: Sequence[str]) -> None:
    """Set the row's fields the step changed (the snapshot holds the very objects read from
    the row unless it replaced them)."""
    for name in fields:
        value = getattr(snapshot, name)
        if getattr(row, name) is not value:
            setattr(row, name, value)
