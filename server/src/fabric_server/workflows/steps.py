"""The building blocks of the state machine's decisions (see `machine`).

`Decision` holds a step while it is decided: the run and nodes as they become, and the
effects so far. Its `move_run` / `move_node` are the one way a status changes: each checks
the transition table and records the change's event. The functions below are the pieces
several transitions share (completing a node, readying what it unblocked, failing, skipping,
ending a run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from fabric_server.workflows.bindings import apply_outputs, deep_merge
from fabric_server.workflows.effects import (
    NODE_TIMEOUT_KIND,
    NODE_WORK_KIND,
    CancelChildRuns,
    CancelQueued,
    Effect,
    Enqueue,
    RecordEvent,
    WakeParentNode,
    task_kind,
)
from fabric_server.workflows.node_state import AwaitingWorker
from fabric_server.workflows.snapshots import NodeSnapshot, RunSnapshot, Step
from fabric_server.workflows.status import (
    NODE_TRANSITIONS,
    RUN_TRANSITIONS,
    NodeStatus,
    RunStatus,
)


class Decision:
    """A step being decided: the run and nodes as they become, and the effects so far."""

    def __init__(self, run: RunSnapshot, nodes: Sequence[NodeSnapshot], now: dt.datetime) -> None:
        self.run = run
        self.now = now
        self.nodes = {node.key: node for node in nodes}
        self.effects: list[Effect] = []

    def node(self, key: str) -> NodeSnapshot:
        return self.nodes[key]

    def ordered(self) -> list[NodeSnapshot]:
        """The nodes in definition order (dicts keep insertion order)."""
        return list(self.nodes.values())

    def move_run(
        self,
        target: RunStatus,
        payload: dict[str, Any],
        node_key: str | None = None,
        **changes: Any,
    ) -> None:
        """The run's one transition: allowed by `RUN_TRANSITIONS`, recorded by its event."""
        kind = RUN_TRANSITIONS.check(self.run.status, target)
        self.run = replace(self.run, status=target, **changes)
        self.emit(kind, payload, node_key)

    def move_node(
        self, key: str, target: NodeStatus, payload: dict[str, Any], **changes: Any
    ) -> None:
        """A node's one transition: allowed by `NODE_TRANSITIONS`, recorded by its event."""
        kind = NODE_TRANSITIONS.check(self.nodes[key].status, target)
        self.nodes[key] = replace(self.nodes[key], status=target, **changes)
        self.emit(kind, payload, key)

    def change_run(self, **changes: Any) -> None:
        """Change fields other than the status."""
        self.run = replace(self.run, **changes)

    def change_node(self, key: str, **changes: Any) -> None:
        """Change fields of a node other than its status."""
        self.nodes[key] = replace(self.nodes[key], **changes)

    def emit(self, kind: str | None, payload: dict[str, Any], node_key: str | None = None) -> None:
        assert kind is not None, "run and node transitions all record an event"
        self.effects.append(
            RecordEvent(kind, self.run.organization_id, self.run.id, node_key, payload)
        )

    def enqueue(
        self,
        kind: str,
        ref_id: str,
        payload: dict[str, Any] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.effects.append(
            Enqueue(
                kind,
                ref_id,
                self.run.organization_id,
                self.run.priority,
                payload or {},
                delay_seconds=delay,
            )
        )

    def enqueue_node(self, key: str, delay: float = 0.0) -> None:
        self.enqueue(NODE_WORK_KIND, self.nodes[key].id, {"run_id": self.run.id}, delay)

    def enqueue_timeout(self, key: str, delay: float) -> None:
        self.enqueue(NODE_TIMEOUT_KIND, self.nodes[key].id, {"run_id": self.run.id}, delay)

    def cancel_queued(self, kind: str, ref_id: str) -> None:
        self.effects.append(CancelQueued(kind, ref_id))

    def done(self) -> Step:
        return Step(self.run, tuple(self.nodes.values()), tuple(self.effects))


def complete(
    d: Decision, key: str, output: dict[str, Any], context_patch: Mapping[str, Any] | None
) -> None:
    """Complete the node: its output bound into the context (raising BindingError first when
    a bound field is missing), then whatever it unblocked."""
    spec = d.run.graph[key]
    node = d.node(key)
    context = deep_merge(d.run.context, context_patch or {})
    if spec.outputs:
        apply_outputs(context, spec.outputs, output)  # raises before anything changed
    elif node.writes_output:
        context[key] = output
    d.change_run(context=context)
    d.move_node(
        key,
        NodeStatus.COMPLETED,
        {"output": output, "attempts": node.attempts},
        output=output,
        error=None,
        completed_at=d.now,
    )
    advance(d)


def resume(d: Decision, key: str, data: dict[str, Any]) -> None:
    """Complete a waiting node with `data`; a waiting run runs again once no node waits."""
    others_wait = any(node.status == NodeStatus.WAITING and node.key != key for node in d.ordered())
    if d.run.status == RunStatus.WAITING and not others_wait:
        d.move_run(RunStatus.RUNNING, {}, key)
    d.cancel_queued(NODE_TIMEOUT_KIND, d.node(key).id)
    complete(d, key, data, None)


def advance(d: Decision) -> None:
    """Ready every pending node whose dependencies completed (unless the run is paused);
    complete a run whose nodes all completed."""
    graph = d.run.graph
    if d.run.status != RunStatus.PAUSED:  # a paused run dispatches nothing until resumed
        for spec in graph:
            node = d.node(spec.key)
            if node.status == NodeStatus.PENDING and all(
                d.node(dep).status == NodeStatus.COMPLETED for dep in spec.depends_on
            ):
                d.move_node(spec.key, NodeStatus.READY, {"operation": node.operation})
                d.enqueue_node(spec.key)
    nodes = d.ordered()
    if all(node.status == NodeStatus.COMPLETED for node in nodes):
        output = {node.key: node.output for node in nodes if not graph.is_upstream(node.key)}
        d.move_run(RunStatus.COMPLETED, {"output": output}, output=output, completed_at=d.now)
        after_end(d)


def skip(d: Decision, key: str, reason: str) -> None:
    """The node will not run: skipped, its queued work withdrawn."""
    node = d.node(key)
    d.move_node(key, NodeStatus.SKIPPED, {"reason": reason}, completed_at=d.now)
    d.cancel_queued(NODE_WORK_KIND, node.id)
    d.cancel_queued(NODE_TIMEOUT_KIND, node.id)
    if isinstance(node.state, AwaitingWorker):  # its task, unless a worker took it already
        d.cancel_queued(task_kind(node.state.operation), node.id)


def fail_node(d: Decision, key: str, error: str) -> None:
    """Fail the node, and with it the run."""
    attempts = d.node(key).attempts
    d.move_node(
        key,
        NodeStatus.FAILED,
        {"error": error, "attempts": attempts},
        error=error,
        completed_at=d.now,
    )
    fail_run(d, f"node {key} failed: {error}", key)


def fail_run(d: Decision, error: str, failed: str | None) -> None:
    """End the run as failed (because of the node `failed`, if any): every unfinished node
    is skipped, saying whether it depended on the failed node."""
    downstream = d.run.graph.downstream(failed) if failed else frozenset()
    for node in d.ordered():
        if not node.status.is_finished:
            reason = (
                f"upstream node {failed} failed"
                if failed and node.key in downstream
                else "the run failed"
            )
            skip(d, node.key, reason)
    d.move_run(RunStatus.FAILED, {"error": error}, failed, error=error, completed_at=d.now)
    after_end(d)


def after_end(d: Decision) -> None:
    """A run ended: cancel its unfinished children, wake the parent node waiting on it —
    both through the queue, so this transaction never locks a second run."""
    run = d.run
    d.effects.append(CancelChildRuns(run.id, run.organization_id, run.priority))
    if run.parent_run_id and run.parent_node_key:
        d.effects.append(
            WakeParentNode(
                run.parent_run_id, run.parent_node_key, run.organization_id, run.priority
            )
        )
