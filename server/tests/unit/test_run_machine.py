"""Run transitions of the pure state machine: start, completion, pause, resume, cancel, fail."""

from __future__ import annotations

from dataclasses import replace

import pytest
from machine_helpers import (
    NOW,
    RUN_ID,
    enqueued,
    events,
    node,
    node_id,
    payload,
    run_of,
    set_nodes,
    statuses,
    withdrawn,
)

from fabric_server.transitions import IllegalTransition
from fabric_server.workflows import machine
from fabric_server.workflows.effects import (
    NODE_TIMEOUT_KIND,
    NODE_WORK_KIND,
    RUN_START_KIND,
    CancelChildRuns,
    WakeParentNode,
)
from fabric_server.workflows.status import NodeStatus as N
from fabric_server.workflows.status import RunStatus as R

DIAMOND = (
    node("a"),
    node("b", depends_on=["a"]),
    node("c", depends_on=["a"]),
    node("d", depends_on=["b", "c"]),
)


def test_queueing_a_pending_run_hands_it_to_the_workers_once() -> None:
    run, _ = run_of(*DIAMOND, status=R.PENDING, started=False, queued=False)
    step = machine.queue_run(run, priority=7, now=NOW)
    assert (step.run.queued_at, step.run.priority) == (NOW, 7)
    assert events(step) == [("workflow.run.queued", None)]
    assert payload(step, "workflow.run.queued") == {"priority": 7}
    assert enqueued(step) == [(RUN_START_KIND, RUN_ID, 0.0)]
    again = machine.queue_run(step.run, priority=1, now=NOW)
    assert again.effects == ()
    assert again.run == step.run


def test_a_run_paused_before_it_started_is_queued_but_not_handed_over() -> None:
    run, _ = run_of(*DIAMOND, status=R.PAUSED, started=False, queued=False)
    step = machine.queue_run(run, priority=None, now=NOW)
    assert step.run.queued_at == NOW
    assert events(step) == [("workflow.run.queued", None)]
    assert enqueued(step) == []


def test_starting_readies_the_roots_only() -> None:
    run, nodes = run_of(*DIAMOND, status=R.PENDING, started=False)
    step = machine.start_run(run, nodes, now=NOW)
    assert (step.run.status, step.run.started_at) == (R.RUNNING, NOW)
    assert statuses(step) == {"a": N.READY, "b": N.PENDING, "c": N.PENDING, "d": N.PENDING}
    assert events(step) == [("workflow.run.started", None), ("workflow.node.ready", "a")]
    assert enqueued(step) == [(NODE_WORK_KIND, node_id("a"), 0.0)]


def test_fan_in_waits_for_every_dependency() -> None:
    run, nodes = run_of(*DIAMOND)
    nodes = set_nodes(nodes, a=N.COMPLETED, b=N.RUNNING, c=N.RUNNING)
    first = machine.complete_node(run, nodes, "b", {"x": 1}, now=NOW)
    assert statuses(first)["d"] == N.PENDING  # c is still running
    assert enqueued(first) == []
    second = machine.complete_node(first.run, list(first.nodes), "c", {"y": 2}, now=NOW)
    assert statuses(second)["d"] == N.READY
    assert events(second) == [("workflow.node.completed", "c"), ("workflow.node.ready", "d")]
    assert enqueued(second) == [(NODE_WORK_KIND, node_id("d"), 0.0)]
    assert second.run.context == {"b": {"x": 1}, "c": {"y": 2}}


def test_the_last_completion_completes_the_run_with_the_outputs_of_its_sinks() -> None:
    run, nodes = run_of(*DIAMOND, parent=("parent-run", "fan"))
    nodes = set_nodes(nodes, a=N.COMPLETED, b=N.COMPLETED, c=N.COMPLETED, d=N.RUNNING)
    step = machine.complete_node(run, nodes, "d", {"done": True}, now=NOW)
    assert step.run.status == R.COMPLETED
    assert step.run.output == {"d": {"done": True}}
    assert step.run.completed_at == NOW
    assert events(step)[-1] == ("workflow.run.completed", None)
    assert step.effects[-2:] == (
        CancelChildRuns(RUN_ID, run.organization_id, run.priority),
        WakeParentNode("parent-run", "fan", run.organization_id, run.priority),
    )


def test_a_paused_run_dispatches_nothing_but_records_what_finishes() -> None:
    run, nodes = run_of(*DIAMOND)
    nodes = set_nodes(nodes, a=N.RUNNING)
    paused = machine.pause_run(run, reason="lunch", now=NOW)
    assert paused.run.status == R.PAUSED
    assert events(paused) == [("workflow.run.paused", None)]
    assert payload(paused, "workflow.run.paused") == {"reason": "lunch"}

    step = machine.complete_node(paused.run, nodes, "a", {}, now=NOW)
    assert statuses(step) == {"a": N.COMPLETED, "b": N.PENDING, "c": N.PENDING, "d": N.PENDING}
    assert step.run.status == R.PAUSED
    assert enqueued(step) == []


def test_a_paused_run_whose_last_node_completes_is_completed() -> None:
    run, nodes = run_of(node("only"), status=R.PAUSED)
    nodes = set_nodes(nodes, only=N.RUNNING)
    step = machine.complete_node(run, nodes, "only", {"v": 1}, now=NOW)
    assert step.run.status == R.COMPLETED


def test_resuming_dispatches_ready_nodes_without_an_open_item_and_what_became_ready() -> None:
    run, nodes = run_of(*DIAMOND, node("e"), status=R.PAUSED)
    nodes = set_nodes(nodes, a=N.COMPLETED, e=N.READY)
    kind, refs = machine.resume_lookup(run, nodes)
    assert (kind, refs) == (NODE_WORK_KIND, [node_id("e")])
    step = machine.resume_run(run, nodes, open_refs=set(), now=NOW)
    assert step.run.status == R.RUNNING
    assert payload(step, "workflow.run.resumed") == {"status": "running"}
    assert enqueued(step) == [
        (NODE_WORK_KIND, node_id("e"), 0.0),  # its item came up during the pause
        (NODE_WORK_KIND, node_id("b"), 0.0),
        (NODE_WORK_KIND, node_id("c"), 0.0),
    ]
    # A ready node whose item is still queued is not queued twice.
    again = machine.resume_run(run, nodes, open_refs={node_id("e")}, now=NOW)
    assert (NODE_WORK_KIND, node_id("e"), 0.0) not in enqueued(again)


def test_resuming_returns_to_waiting_when_a_node_still_waits() -> None:
    run, nodes = run_of(*DIAMOND, status=R.PAUSED)
    nodes = set_nodes(nodes, a=N.WAITING)
    step = machine.resume_run(run, nodes, open_refs=set(), now=NOW)
    assert step.run.status == R.WAITING


def test_resuming_a_run_that_never_started_queues_its_start_unless_still_queued() -> None:
    run, nodes = run_of(*DIAMOND, status=R.PAUSED, started=False, queued=True)
    assert machine.resume_lookup(run, nodes) == (RUN_START_KIND, [RUN_ID])
    step = machine.resume_run(run, nodes, open_refs=set(), now=NOW)
    assert step.run.status == R.PENDING
    assert enqueued(step) == [(RUN_START_KIND, RUN_ID, 0.0)]
    assert machine.resume_run(run, nodes, open_refs={RUN_ID}, now=NOW).effects[1:] == ()
    unqueued = replace(run, queued_at=None)
    assert enqueued(machine.resume_run(unqueued, nodes, open_refs=set(), now=NOW)) == []


def test_cancelling_skips_unfinished_nodes_and_withdraws_their_work() -> None:
    run, nodes = run_of(*DIAMOND)
    nodes = set_nodes(nodes, a=N.COMPLETED, b=N.RUNNING, c=N.WAITING)
    step = machine.cancel_run(run, nodes, reason="stop", now=NOW)
    assert step.run.status == R.CANCELLED
    assert statuses(step) == {"a": N.COMPLETED, "b": N.SKIPPED, "c": N.SKIPPED, "d": N.SKIPPED}
    assert payload(step, "workflow.node.skipped", "d") == {"reason": "the run was cancelled"}
    assert (NODE_TIMEOUT_KIND, node_id("c")) in withdrawn(step)
    assert (NODE_WORK_KIND, node_id("d")) in withdrawn(step)
    assert (RUN_START_KIND, RUN_ID) in withdrawn(step)
    assert events(step)[-1] == ("workflow.run.cancelled", None)
    assert isinstance(step.effects[-1], CancelChildRuns)


def test_a_failing_run_skips_its_nodes_and_says_why() -> None:
    run, nodes = run_of(*DIAMOND)
    nodes = set_nodes(nodes, a=N.RUNNING)
    step = machine.fail_run(run, nodes, error="workflow.run.start failed: boom", now=NOW)
    assert step.run.status == R.FAILED
    assert step.run.error == "workflow.run.start failed: boom"
    assert payload(step, "workflow.node.skipped", "a") == {"reason": "the run failed"}


@pytest.mark.parametrize("ended", [R.COMPLETED, R.FAILED, R.CANCELLED])
def test_an_ended_run_cannot_change(ended: R) -> None:
    run, nodes = run_of(*DIAMOND, status=ended)
    with pytest.raises(IllegalTransition):
        machine.cancel_run(run, nodes, reason=None, now=NOW)
    with pytest.raises(IllegalTransition):
        machine.pause_run(run, reason=None, now=NOW)
    with pytest.raises(IllegalTransition):
        machine.start_run(run, nodes, now=NOW)
