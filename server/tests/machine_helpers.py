"""Builders for the pure state-machine tests: snapshots of runs and nodes, no database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from fabric_server.workflows.effects import CancelQueued, Enqueue
from fabric_server.workflows.run_graph import RunGraph
from fabric_server.workflows.snapshots import NodeSnapshot, RunSnapshot, Step
from fabric_server.workflows.status import NodeStatus, RunStatus

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
RUN_ID = "run-1"
ORG_ID = "org-1"


def node(
    key: str,
    operation: str = "workflow.noop",
    *,
    depends_on: Sequence[str] = (),
    inputs: dict[str, str] | None = None,
    outputs: dict[str, str] | None = None,
    config: dict[str, Any] | None = None,
    max_retries: int = 0,
    timeout_seconds: float = 30.0,
) -> dict[str, Any]:
    """A node of a run's graph, in the stored JSON shape."""
    return {
        "key": key,
        "operation": operation,
        "config": config or {},
        "inputs": [{"name": n, "path": p} for n, p in (inputs or {}).items()],
        "outputs": [{"name": n, "path": p} for n, p in (outputs or {}).items()],
        "depends_on": list(depends_on),
        "policy": {"timeout_seconds": timeout_seconds, "max_retries": max_retries},
    }


def run_of(
    *nodes: dict[str, Any],
    status: RunStatus = RunStatus.RUNNING,
    context: dict[str, Any] | None = None,
    started: bool = True,
    queued: bool = True,
    depth: int = 0,
    parent: tuple[str, str] | None = None,
    writes_output: bool = True,
) -> tuple[RunSnapshot, list[NodeSnapshot]]:
    """A run of these nodes (all pending) and its node snapshots."""
    graph = RunGraph.parse(nodes)
    run = RunSnapshot(
        id=RUN_ID,
        organization_id=ORG_ID,
        status=status,
        graph=graph,
        context=context or {},
        priority=5,
        depth=depth,
        parent_run_id=parent[0] if parent else None,
        parent_node_key=parent[1] if parent else None,
        queued_at=NOW if queued else None,
        started_at=NOW if started else None,
    )
    states = [
        NodeSnapshot(
            id=node_id(spec.key),
            key=spec.key,
            operation=spec.operation,
            writes_output=writes_output,
        )
        for spec in graph
    ]
    return run, states


def node_id(key: str) -> str:
    return f"node-{key}"


def set_nodes(nodes: Sequence[NodeSnapshot], **statuses: NodeStatus) -> list[NodeSnapshot]:
    """The nodes with the given keys moved to the given statuses."""
    return [replace(n, status=statuses[n.key]) if n.key in statuses else n for n in nodes]


def changed(nodes: Sequence[NodeSnapshot], key: str, **changes: Any) -> list[NodeSnapshot]:
    return [replace(n, **changes) if n.key == key else n for n in nodes]


def events(step: Step) -> list[tuple[str, str | None]]:
    """The events a step records, as (kind, node key)."""
    return [(event.kind, event.node_key) for event in step.events()]


def payload(step: Step, kind: str, node_key: str | None = None) -> dict[str, Any]:
    return next(e.payload for e in step.events() if e.kind == kind and e.node_key == node_key)


def enqueued(step: Step) -> list[tuple[str, str, float]]:
    """The work items a step queues, as (kind, ref id, delay)."""
    return [(e.kind, e.ref_id, e.delay_seconds) for e in step.effects if isinstance(e, Enqueue)]


def withdrawn(step: Step) -> list[tuple[str, str]]:
    return [(e.kind, e.ref_id) for e in step.effects if isinstance(e, CancelQueued)]


def statuses(step: Step) -> dict[str, NodeStatus]:
    return {n.key: n.status for n in step.nodes}
