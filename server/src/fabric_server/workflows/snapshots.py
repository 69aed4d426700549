"""Typed snapshots of a run and its nodes: what the state machine decides from, and what a
decision (`Step`) hands back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fabric_server.workflows.effects import Effect, RecordEvent
from fabric_server.workflows.node_state import Idle, NodeState
from fabric_server.workflows.run_graph import RunGraph
from fabric_server.workflows.status import NodeStatus, RunStatus


@dataclass(frozen=True)
class RunSnapshot:
    """A run as the state machine sees it. `context` is read, never changed in place: a new
    context replaces it."""

    id: str
    organization_id: str
    status: RunStatus
    graph: RunGraph
    context: Mapping[str, Any]
    priority: int = 0
    depth: int = 0
    parent_run_id: str | None = None
    parent_node_key: str | None = None
    output: Mapping[str, Any] | None = None
    error: str | None = None
    queued_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None


@dataclass(frozen=True)
class NodeSnapshot:
    """A node of a run. `writes_output` comes from its operation: without `outputs`
    bindings, its output is stored in the context under the node key."""

    id: str
    key: str
    operation: str
    status: NodeStatus = NodeStatus.PENDING
    attempts: int = 0
    state: NodeState = field(default_factory=Idle)
    input: Mapping[str, Any] | None = None
    output: Mapping[str, Any] | None = None
    error: str | None = None
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    writes_output: bool = True


@dataclass(frozen=True)
class Step:
    """A decision: the run and its nodes as they are now, and the effects to perform, in
    order, in the same transaction as the changed rows."""

    run: RunSnapshot
    nodes: tuple[NodeSnapshot, ...]
    effects: tuple[Effect, ...]

    def node(self, key: str) -> NodeSnapshot:
        return next(node for node in self.nodes if node.key == key)

    def events(self) -> list[RecordEvent]:
        return [effect for effect in self.effects if isinstance(effect, RecordEvent)]
