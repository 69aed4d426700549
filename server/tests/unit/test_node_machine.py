"""Node transitions of the pure state machine: attempts, retries, time-outs, waiting for input,
sleeping, child runs, and which work a dispatched item does."""

from __future__ import annotations

import datetime as dt

import pytest
from machine_helpers import (
    NOW,
    RUN_ID,
    changed,
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
from fabric_server.workflows.bindings import BindingError
from fabric_server.workflows.effects import NODE_TIMEOUT_KIND, NODE_WORK_KIND, StartChildRuns
from fabric_server.workflows.machine import NodeWork
from fabric_server.workflows.node_state import AwaitingChildren, AwaitingInput, Sleeping
from fabric_server.workflows.snapshots import NodeSnapshot, RunSnapshot
from fabric_server.workflows.status import NodeStatus as N
from fabric_server.workflows.status import RunStatus as R

CHAIN = (
    node("call", "http.request", inputs={"url": "$context.url"}, max_retries=2),
    node("use", depends_on=["call"]),
    node("last", depends_on=["use"]),
    node("aside"),
)


def test_an_attempt_reads_its_inputs_and_counts() -> None:
    run, nodes = run_of(*CHAIN, context={"url": "https://a.test"})
    nodes = set_nodes(nodes, call=N.READY)
    step = machine.begin_attempt(run, nodes, "call", now=NOW)
    call = step.node("call")
    assert (call.status, call.attempts, call.input, call.started_at) == (
        N.RUNNING,
        1,
        {"url": "https://a.test"},
        NOW,
    )
    assert payload(step, "workflow.node.started", "call") == {
        "operation": "http.request",
        "attempt": 1,
        "input": {"url": "https://a.test"},
    }
    # A worker died mid-attempt: the node runs again, as attempt 2, from `running`.
    again = machine.begin_attempt(step.run, list(step.nodes), "call", now=NOW)
    assert again.node("call").attempts == 2
    assert again.node("call").started_at == NOW


def test_a_transient_failure_is_retried_after_the_backoff_while_the_policy_allows() -> None:
    run, nodes = run_of(*CHAIN)
    nodes = changed(nodes, "call", status=N.RUNNING, attempts=2)
    step = machine.record_failure(
        run, nodes, "call", error="HTTP 503", permanent=False, retry_delay=1.23456, now=NOW
    )
    assert statuses(step)["call"] == N.READY
    assert step.node("call").error == "HTTP 503"
    assert payload(step, "workflow.node.retrying", "call") == {
        "error": "HTTP 503",
        "attempt": 2,
        "retry_in_seconds": 1.235,
    }
    assert enqueued(step) == [(NODE_WORK_KIND, node_id("call"), 1.23456)]
    assert step.run.status == R.RUNNING


def test_retries_run_out_and_the_node_fails_the_run() -> None:
    run, nodes = run_of(*CHAIN)
    nodes = changed(nodes, "call", status=N.RUNNING, attempts=3)  # 1 + max_retries 2
    step = machine.record_failure(
        run, nodes, "call", error="HTTP 503", permanent=False, retry_delay=1.0, now=NOW
    )
    assert statuses(step) == {
        "call": N.FAILED,
        "use": N.SKIPPED,
        "last": N.SKIPPED,
        "aside": N.SKIPPED,
    }
    assert payload(step, "workflow.node.failed", "call") == {"error": "HTTP 503", "attempts": 3}
    assert payload(step, "workflow.node.skipped", "last") == {"reason": "upstream node call failed"}
    assert payload(step, "workflow.node.skipped", "aside") == {"reason": "the run failed"}
    assert step.run.status == R.FAILED
    assert step.run.error == "node call failed: HTTP 503"
    failed = [e for e in step.events() if e.kind == "workflow.run.failed"]
    assert [(e.node_key, e.payload) for e in failed] == [
        ("call", {"error": "node call failed: HTTP 503"})
    ]
    assert enqueued(step) == []


def test_a_permanent_failure_is_not_retried() -> None:
    run, nodes = run_of(*CHAIN)
    nodes = changed(nodes, "call", status=N.RUNNING, attempts=1)
    step = machine.record_failure(
        run, nodes, "call", error="bad input", permanent=True, retry_delay=1.0, now=NOW
    )
    assert statuses(step)["call"] == N.FAILED


def test_an_output_missing_a_bound_field_fails_the_node() -> None:
    run, nodes = run_of(node("n", outputs={"answer": "$context.answer"}))
    nodes = set_nodes(nodes, n=N.RUNNING)
    with pytest.raises(BindingError, match="'answer'"):
        machine.complete_node(run, nodes, "n", {"other": 1}, now=NOW)
    step = machine.node_succeeded(run, nodes, "n", {"other": 1}, now=NOW)
    assert statuses(step)["n"] == N.FAILED
    assert step.run.context == {}  # nothing was bound


def test_outputs_are_bound_or_stored_under_the_node_key() -> None:
    run, nodes = run_of(node("n", outputs={"answer": "$context.deep.answer"}), node("m"))
    nodes = set_nodes(nodes, n=N.RUNNING, m=N.RUNNING)
    step = machine.node_succeeded(
        run, nodes, "n", {"answer": 42}, context_patch={"patched": True}, now=NOW
    )
    assert step.run.context == {"patched": True, "deep": {"answer": 42}}
    step = machine.complete_node(step.run, list(step.nodes), "m", {"m": 1}, now=NOW)
    assert step.run.context["m"] == {"m": 1}
    quiet_run, quiet = run_of(node("q"), writes_output=False)
    step = machine.complete_node(quiet_run, set_nodes(quiet, q=N.RUNNING), "q", {"x": 1}, now=NOW)
    assert step.run.context == {}


def test_waiting_for_input_with_a_time_limit_arms_the_time_out() -> None:
    run, nodes = run_of(node("ask", "workflow.approval"), node("next", depends_on=["ask"]))
    nodes = set_nodes(nodes, ask=N.RUNNING)
    step = machine.wait_for_input(run, nodes, "ask", prompt="ok?", timeout_seconds=60, now=NOW)
    due = NOW + dt.timedelta(seconds=60)
    assert step.node("ask").status == N.WAITING
    assert step.node("ask").state == AwaitingInput("ok?", due, 60)
    assert step.run.status == R.WAITING
    assert events(step) == [("workflow.node.waiting", "ask"), ("workflow.run.waiting", "ask")]
    assert payload(step, "workflow.node.waiting", "ask") == {
        "prompt": "ok?",
        "timeout_at": due.isoformat(),
    }
    assert enqueued(step) == [(NODE_TIMEOUT_KIND, node_id("ask"), 60)]
    assert machine.timeout_due_at(step.run, step.node("ask")) == due


def test_a_paused_run_stays_paused_when_a_node_starts_waiting() -> None:
    run, nodes = run_of(node("ask", "workflow.approval"), status=R.PAUSED)
    nodes = set_nodes(nodes, ask=N.RUNNING)
    step = machine.wait_for_input(run, nodes, "ask", prompt=None, timeout_seconds=None, now=NOW)
    assert step.run.status == R.PAUSED
    assert enqueued(step) == []


def waiting_run() -> tuple[RunSnapshot, list[NodeSnapshot]]:
    run, nodes = run_of(
        node("ask", "workflow.approval", outputs={"approved": "$context.approved"}),
        node("other", "workflow.approval"),
        node("next", depends_on=["ask"]),
        status=R.WAITING,
    )
    state = AwaitingInput("ok?", NOW, 60.0)
    nodes = changed(nodes, "ask", status=N.WAITING, state=state)
    return run, nodes


def test_answering_the_last_waiting_node_resumes_the_run_and_withdraws_its_time_out() -> None:
    run, nodes = waiting_run()
    step = machine.resume_node(run, nodes, "ask", {"approved": True}, now=NOW)
    assert step.run.status == R.RUNNING
    assert step.run.context == {"approved": True}
    assert statuses(step)["next"] == N.READY
    assert withdrawn(step) == [(NODE_TIMEOUT_KIND, node_id("ask"))]
    assert events(step)[:2] == [("workflow.run.resumed", "ask"), ("workflow.node.completed", "ask")]

    others_wait = changed(nodes, "other", status=N.WAITING)
    step = machine.resume_node(run, others_wait, "ask", {"approved": True}, now=NOW)
    assert step.run.status == R.WAITING


def test_an_answer_without_the_bound_field_changes_nothing() -> None:
    run, nodes = waiting_run()
    with pytest.raises(BindingError):
        machine.resume_node(run, nodes, "ask", {"nope": 1}, now=NOW)


def test_a_time_out_decides_with_the_operation_output() -> None:
    run, nodes = waiting_run()
    step = machine.time_out(
        run, nodes, "ask", decision={"approved": False, "timed_out": True}, now=NOW
    )
    assert events(step)[:3] == [
        ("workflow.node.timed_out", "ask"),
        ("workflow.run.resumed", "ask"),
        ("workflow.node.completed", "ask"),
    ]
    assert payload(step, "workflow.node.timed_out", "ask") == {"timeout_seconds": 60.0}
    assert step.run.context == {"approved": False}


def test_a_time_out_fails_the_node_with_the_operation_error_or_a_binding_error() -> None:
    run, nodes = waiting_run()
    step = machine.time_out(run, nodes, "ask", decision="approval_timed_out: no decision", now=NOW)
    assert statuses(step)["ask"] == N.FAILED
    assert step.run.status == R.FAILED
    step = machine.time_out(run, nodes, "ask", decision={"timed_out": True}, now=NOW)
    assert statuses(step)["ask"] == N.FAILED
    assert "approved" in (step.node("ask").error or "")


def test_sleeping_stays_running_and_wakes_through_a_delayed_item() -> None:
    run, nodes = run_of(node("nap", "workflow.delay"))
    nodes = set_nodes(nodes, nap=N.RUNNING)
    step = machine.sleep(run, nodes, "nap", seconds=5, now=NOW)
    assert step.node("nap").status == N.RUNNING
    assert step.node("nap").state == Sleeping(NOW + dt.timedelta(seconds=5), 5)
    assert enqueued(step) == [(NODE_WORK_KIND, node_id("nap"), 5)]
    assert events(step) == []
    assert machine.node_work(step.run, step.node("nap")) is NodeWork.WAKE
    later = machine.keep_sleeping(step.run, list(step.nodes), "nap", seconds=2.5, now=NOW)
    assert enqueued(later) == [(NODE_WORK_KIND, node_id("nap"), 2.5)]


def test_spawning_children_leaves_the_node_waiting_for_them() -> None:
    run, nodes = run_of(node("fan", "workflow.fan_out"))
    nodes = set_nodes(nodes, fan=N.RUNNING)
    contexts = [{"item": 1, "index": 0}, {"item": 2, "index": 1}]
    step = machine.spawn_children(
        run,
        nodes,
        "fan",
        definition_id="def-1",
        wanted="branch",
        contexts=contexts,
        child_ids=["c1", "c2"],
        now=NOW,
    )
    assert step.node("fan").state == AwaitingChildren(("c1", "c2"))
    assert step.effects == (StartChildRuns(RUN_ID, "fan", "def-1", tuple(contexts), ("c1", "c2")),)
    assert machine.node_work(step.run, step.node("fan")) is NodeWork.COLLECT


def test_spawning_fails_the_node_without_a_definition_or_when_nested_too_deep() -> None:
    run, nodes = run_of(node("sub", "workflow.subworkflow"))
    nodes = set_nodes(nodes, sub=N.RUNNING)
    args = {"wanted": "gone", "contexts": [{}], "child_ids": ["c1"], "now": NOW}
    step = machine.spawn_children(run, nodes, "sub", definition_id=None, **args)
    assert step.node("sub").error == "workflow definition 'gone' was not found"
    deep, _ = run_of(node("sub", "workflow.subworkflow"), depth=machine.MAX_NESTING)
    step = machine.spawn_children(deep, nodes, "sub", definition_id="def-1", **args)
    assert step.node("sub").error == "child runs nest deeper than 8 levels"


@pytest.mark.parametrize(
    ("run_status", "node_status", "work"),
    [
        (R.RUNNING, N.READY, NodeWork.EXECUTE),
        (R.RUNNING, N.RUNNING, NodeWork.EXECUTE),  # re-executed after a worker died
        (R.WAITING, N.READY, NodeWork.EXECUTE),
        (R.PAUSED, N.READY, NodeWork.NOTHING),  # resuming the run queues it again
        (R.PAUSED, N.RUNNING, NodeWork.EXECUTE),  # under way before the pause
        (R.RUNNING, N.PENDING, NodeWork.NOTHING),
        (R.RUNNING, N.COMPLETED, NodeWork.NOTHING),
        (R.CANCELLED, N.READY, NodeWork.NOTHING),
    ],
)
def test_which_work_a_node_item_does(run_status: R, node_status: N, work: NodeWork) -> None:
    run, nodes = run_of(node("n"), status=run_status)
    assert machine.node_work(run, set_nodes(nodes, n=node_status)[0]) is work


def test_only_the_current_attempt_of_a_live_run_records_its_outcome() -> None:
    run, nodes = run_of(node("n"))
    current = changed(nodes, "n", status=N.RUNNING, attempts=2)[0]
    assert machine.owns_attempt(run, current, 2)
    assert not machine.owns_attempt(run, current, 1)  # superseded by a re-execution
    skipped = changed(nodes, "n", status=N.SKIPPED, attempts=2)[0]
    assert not machine.owns_attempt(run, skipped, 2)
    ended, _ = run_of(node("n"), status=R.FAILED)
    assert not machine.owns_attempt(ended, current, 2)


def test_illegal_node_changes_raise() -> None:
    run, nodes = run_of(*CHAIN)
    with pytest.raises(IllegalTransition, match="workflow node cannot go from 'pending'"):
        machine.complete_node(run, nodes, "use", {}, now=NOW)
    done = set_nodes(nodes, call=N.COMPLETED)
    with pytest.raises(IllegalTransition, match="'completed' to 'failed'"):
        machine.fail_node(run, done, "call", error="late", now=NOW)
