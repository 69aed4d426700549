"""Creating runs and handing them to the workers."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.types import new_id, utcnow
from fabric_server.workflows import machine
from fabric_server.workflows.graph import effective_node
from fabric_server.workflows.models import WorkflowDefinition, WorkflowNodeState, WorkflowRun
from fabric_server.workflows.node_state import Idle
from fabric_server.workflows.run_graph import RunGraph
from fabric_server.workflows.status import NodeStatus, RunStatus
from fabric_server.workflows.writer import StepWriter, run_snapshot


class RunLauncher:
    def __init__(self, writer: StepWriter, *, default_timeout: float) -> None:
        self.writer = writer
        self.operations = writer.operations
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
        run_id: str | None = None,
    ) -> WorkflowRun:
        """A pending run of `definition`, with one pending state per node."""
        graph = RunGraph.parse(
            [
                effective_node(node, definition.defaults, self.operations, self.default_timeout)
                for node in definition.nodes
            ]
        )
        parent_run, parent_key, parent_index = parent if parent else (None, None, None)
        run = WorkflowRun(
            id=run_id or new_id(),
            organization_id=definition.organization_id,
            workflow_definition_id=definition.id,
            workflow_name=definition.name,
            definition_version=definition.version,
            graph=graph,
            status=RunStatus.PENDING,
            context=context,
            priority=priority,
            run_metadata=metadata,
            environment=environment,
            parent_run_id=parent_run.id if parent_run else None,
            parent_node_key=parent_key,
            parent_index=parent_index,
            root_run_id=(parent_run.root_run_id or parent_run.id) if parent_run else None,
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
                    node_key=node.key,
                    operation=node.operation,
                    position=position,
                    status=NodeStatus.PENDING,
                    state=Idle(),
                )
            )
        await self.writer.events.record(
            session,
            "workflow.run.created",
            organization_id=run.organization_id,
            run_id=run.id,
            payload={
                "workflow_definition_id": definition.id,
                "workflow_name": definition.name,
                "parent_run_id": run.parent_run_id,
                "status": run.status.value,
            },
        )
        return run

    async def queue_run(
        self, session: AsyncSession, run: WorkflowRun, priority: int | None = None
    ) -> None:
        """Hand a pending run to the workers (once; later calls change nothing).

        A run paused before it started is marked queued, but only handed over on resume.
        """
        step = machine.queue_run(run_snapshot(run), priority=priority, now=utcnow())
        await self.writer.apply(session, run, (), step)
