"""Rows to wire objects (the response models)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fabric_server.events.hub import LogEvent
from fabric_server.events.models import Event
from fabric_server.events.sse import event_to_dict
from fabric_server.json_limits import render
from fabric_server.workflows.models import WorkflowDefinition, WorkflowNodeState, WorkflowRun
from fabric_server.workflows.schemas import DefinitionOut, RunLog, RunOut
from fabric_server.workflows.status import NodeStatus

_CURRENT_NODE_STATUSES = (NodeStatus.RUNNING, NodeStatus.WAITING)


def definition_out(definition: WorkflowDefinition) -> DefinitionOut:
    data = {name: getattr(definition, name) for name in DefinitionOut.model_fields}
    return render(DefinitionOut, data)


def run_out(run: WorkflowRun, nodes: Sequence[WorkflowNodeState]) -> RunOut:
    data = {name: getattr(run, name) for name in _RUN_COLUMNS}
    data["metadata"] = run.run_metadata
    data["progress"] = _progress(nodes)
    data["nodes"] = node_states_out(run, nodes)
    return render(RunOut, data)


def node_states_out(run: WorkflowRun, nodes: Sequence[WorkflowNodeState]) -> list[dict[str, Any]]:
    graph = run.graph
    return [
        {
            "node_key": node.node_key,
            "operation": node.operation,
            "status": node.status,
            "attempts": node.attempts,
            "depends_on": list(graph[node.node_key].depends_on) if node.node_key in graph else [],
            "input": node.input,
            "output": node.output,
            "error": node.error,
            "started_at": node.started_at,
            "completed_at": node.completed_at,
        }
        for node in nodes
    ]


def run_log_out(
    run: WorkflowRun, nodes: Sequence[WorkflowNodeState], events: Sequence[Event]
) -> RunLog:
    data = {
        "run_id": run.id,
        "status": run.status,
        "nodes": node_states_out(run, nodes),
        "events": [event_to_dict(LogEvent.of(event)) for event in events],
    }
    return render(RunLog, data)


def _progress(nodes: Sequence[WorkflowNodeState]) -> dict[str, Any]:
    total = len(nodes)
    done = sum(1 for node in nodes if node.status.is_finished)
    current = next((n.node_key for n in nodes if n.status in _CURRENT_NODE_STATUSES), None)
    return {
        "total_tasks": total,
        "completed_tasks": done,
        "current_task": current,
        "percentage": round(100.0 * done / total, 1) if total else 100.0,
    }


_RUN_COLUMNS = tuple(
    name for name in RunOut.model_fields if name not in ("metadata", "progress", "nodes")
)
