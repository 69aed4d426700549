"""Builds the workflow domain's services and work handlers from the shared ones."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.assembly import Assembled, Platform
from fabric_server.engine.admission import InFlightLimit
from fabric_server.orgs.limits import limit_of
from fabric_server.provider_calls.use_case import ProviderCalls
from fabric_server.workflows import repository
from fabric_server.workflows.core_steps import CoreSteps
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
    Steps,
)
from fabric_server.workflows.launch import RunLauncher
from fabric_server.workflows.lifecycle import RunLifecycle
from fabric_server.workflows.nodes import OperationRegistry, build_operations
from fabric_server.workflows.runs import RunService
from fabric_server.workflows.sizes import NodeLimits
from fabric_server.workflows.writer import StepWriter


@dataclass(kw_only=True)
class Workflows(Assembled):
    operations: OperationRegistry
    definitions: DefinitionService
    runs: RunService
    #: For the code workers' domain, which records their reports the same way.
    steps: Steps
    limits: NodeLimits
    active_runs: InFlightLimit


def assemble(platform: Platform, calls: ProviderCalls) -> Workflows:
    settings, db, queue, events = platform.settings, platform.db, platform.queue, platform.events
    access = platform.access
    operations = build_operations(calls, settings)
    step_writer = StepWriter(queue, events, operations)
    launcher = RunLauncher(step_writer, default_timeout=settings.workflow_node_timeout_seconds)
    lifecycle = RunLifecycle(queue, step_writer, launcher)
    core = CoreSteps(
        queue, events, operations, default_timeout=settings.workflow_node_timeout_seconds
    )
    steps = Steps(platform.writer, queue, core)
    limits = NodeLimits(
        rendered_bytes=settings.workflow_max_rendered_bytes,
        output_bytes=settings.workflow_max_node_output_bytes,
        context_bytes=settings.workflow_max_context_bytes,
    )
    nodes = NodeHandler(
        db,
        queue,
        lifecycle,
        operations,
        calls,
        steps,
        platform.hub,
        max_descendants=settings.workflow_max_descendants,
        limits=limits,
    )
    active_runs = InFlightLimit(
        db,
        what="top-level runs",
        setting="FABRIC_ORG_MAX_ACTIVE_RUNS",
        limit=settings.org_max_active_runs,
        count=repository.count_active_top_runs,
        limit_of=limit_of("max_active_runs"),
    )
    return Workflows(
        operations=operations,
        definitions=DefinitionService(access, operations),
        runs=RunService(
            access,
            launcher,
            lifecycle,
            active_runs,
        ),
        handlers={
            NODE_WORK_KIND: nodes,
            RUN_START_KIND: RunStartHandler(db, queue, lifecycle, steps),
            RUN_CANCEL_KIND: RunCancelHandler(db, queue, lifecycle, steps),
            NODE_TIMEOUT_KIND: NodeTimeoutHandler(db, queue, lifecycle, operations),
        },
        resolvers={
            "workflow": repository.organization_of_definition,
            "workflow_run": repository.organization_of_run,
        },
        steps=steps,
        limits=limits,
        active_runs=active_runs,
    )
