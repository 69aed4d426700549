"""Creating runs and handing them to the workers; the work kinds that drive runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.types import new_id, utcnow
from fabric_server.engine.queue import WorkQueue
from fabric_server.events.outbox import EventRecorder
from fabric_server.workflows.graph import effective_node
from fabric_server.workflows.models import WorkflowDefinition, WorkflowNodeState, WorkflowRun
from fabric_server.workflows.nodes import OperationRegistry

NODE_WORK_KIND = "workflow.node"
RUN_START_KIND = "workflow.run.start"
RUN_CANCEL_KIND = "workflow.run.cancel"
# Due when a node waiting for input runs out of time (an approval's `timeout_seconds`).
NODE_TIMEOUT_KIND = "workflow.node.timeout"
WORK_KINDS = (NODE_WORK_KIND, RUN_START_KIND, RUN_CANCEL_KIND, NODE_TIMEOUT_KIND)
# Each work item is one step; it is only re-attempted when its worker died or hit an
# unexpected error. Node retries are separate (counted on the node, per its policy).
WORK_ATTEMPTS = 5


async def record_run_event(
    events: EventRecorder,
    session: AsyncSession,
    run: WorkflowRun,
    kind: str,
    payload: dict[str, Any],
    node_key: str | None = None,
) -> None:
    await events.record(
        session,
        kind,
        organization_id=run.organization_id,
        run_id=run.id,
        node_key=node_key,
        payload=payload,
    )


class RunLauncher:
    def __init__(
        self,
        queue: WorkQueue,
        events: EventRecorder,
        operations: OperationRegistry,
        *,
        default_timeout: float,
    ) -> None:
        self.queue = queue
        self.events = events
        self.operations = operations
        self.default_timeout = default_timeout

    async def create_run(
        self,
        session: AsyncSession,
        definition: WorkflowDefinition,
        *,
        context: dict[str, Any],
        created_by: str | None,
        priority: int = 0,
        metadata: dict[str, Any] | None = None,
        environment: str | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        parent: tuple[WorkflowRun, str, int] | None = None,
    ) -> WorkflowRun:
        """A pending run of `definition`, with one pending state per node."""
        graph = [
            effective_node(node, definition.defaults, self.operations, self.default_timeout)
            for node in definition.nodes
        ]
        parent_run, parent_key, parent_index = parent if parent else (None, None, None)
        run = WorkflowRun(
            id=new_id(),
            organization_id=definition.organization_id,
            workflow_definition_id=definition.id,
            workflow_name=definition.name,
            definition_version=definition.version,
            graph=graph,
            status="pending",
            context=context,
            priority=priority,
            run_metadata=metadata,
            environment=environment,
            parent_run_id=parent_run.id if parent_run else None,
            parent_node_key=parent_key,
            parent_index=parent_index,
            depth=parent_run.depth + 1 if parent_run else 0,
            created_by=created_by,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        session.add(run)
        await session.flush()
        for position, node in enumerate(graph):
            session.add(
                WorkflowNodeState(
                    run_id=run.id,
                    node_key=node["key"],
                    operation=node["operation"],
                    position=position,
                    status="pending",
                    state={},
                )
            )
        await record_run_event(
            self.events,
            session,
            run,
            "workflow.run.created",
            {
                "workflow_definition_id": definition.id,
                "workflow_name": definition.name,
                "parent_run_id": run.parent_run_id,
                "status": run.status,
            },
        )
        return run

    async def queue_run(
        self, session: AsyncSession, run: WorkflowRun, priority: int | None = None
    ) -> None:
        """Hand a pending run to the workers (once; later calls change nothing).

        A run paused before it started is marked queued, but only handed over on resume.
        """
        if run.queued_at is not None or run.status not in ("pending", "paused"):
            return
        if priority is not None:
            run.priority = priority
        run.queued_at = utcnow()
        await record_run_event(
            self.events, session, run, "workflow.run.queued", {"priority": run.priority}
        )
        if run.status == "pending":
            await self.enqueue_start(session, run)

    async def enqueue_start(self, session: AsyncSession, run: WorkflowRun) -> None:
        await self.queue.enqueue(
            session,
            RUN_START_KIND,
            ref_id=run.id,
            organization_id=run.organization_id,
            priority=run.priority,
            max_attempts=WORK_ATTEMPTS,
        )
