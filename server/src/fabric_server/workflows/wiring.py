"""Builds the workflow domain's services and work handlers from the shared ones."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.access.service import Access
from fabric_server.budgets.service import BudgetService
from fabric_server.db.database import Database
from fabric_server.engine.queue import WorkQueue
from fabric_server.engine.worker import Handler
from fabric_server.events.outbox import EventRecorder
from fabric_server.providers.registry import ProviderRegistry
from fabric_server.settings import Settings
from fabric_server.workflows.definitions import DefinitionService
from fabric_server.workflows.effects import (
    NODE_TIMEOUT_KIND,
    NODE_WORK_KIND,
    RUN_CANCEL_KIND,
    RUN_START_KIND,
)
from fabric_server.workflows.executor import (
    NodeHandler,
    NodeTimeoutHandler,
    RunCancelHandler,
    RunStartHandler,
)
from fabric_server.workflows.launch import RunLauncher
from fabric_server.workflows.lifecycle import RunLifecycle
from fabric_server.workflows.nodes import OperationRegistry, build_operations
from fabric_server.workflows.runs import RunService
from fabric_server.workflows.writer import StepWriter


@dataclass
class Workflows:
    operations: OperationRegistry
    definitions: DefinitionService
    runs: RunService
    handlers: dict[str, Handler]


def build_workflows(
    settings: Settings,
    db: Database,
    queue: WorkQueue,
    events: EventRecorder,
    access: Access,
    providers: ProviderRegistry,
    budgets: BudgetService,
) -> Workflows:
    operations = build_operations(providers, settings, db, budgets)
    writer = StepWriter(queue, events, operations)
    launcher = RunLauncher(writer, default_timeout=settings.workflow_node_timeout_seconds)
    lifecycle = RunLifecycle(queue, writer, launcher)
    nodes = NodeHandler(
        db,
        queue,
        lifecycle,
        operations,
        budgets,
        watch_interval=settings.worker_poll_interval,
    )
    return Workflows(
        operations=operations,
        definitions=DefinitionService(access, operations),
        runs=RunService(access, launcher, lifecycle),
        handlers={
            NODE_WORK_KIND: nodes,
            RUN_START_KIND: RunStartHandler(db, queue, lifecycle),
            RUN_CANCEL_KIND: RunCancelHandler(db, queue, lifecycle),
            NODE_TIMEOUT_KIND: NodeTimeoutHandler(db, queue, lifecycle, operations),
        },
    )
