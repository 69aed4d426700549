"""The pure core of workflow runs: every transition of a run and of its nodes.

Each public function takes snapshots of a run and its nodes (and what happened: an output,
an error, a caller's request) plus the current time, and returns a `Step`: the run and nodes
as they become, and the effects to perform — events to record, work to enqueue or withdraw,
child runs to start or cancel. Nothing here touches the database or the clock; `RunLifecycle`
applies a step in the caller's transaction.

Every status change goes through `Decision.move_run` / `move_node` (`steps`), which check the
change against `RUN_TRANSITIONS` / `NODE_TRANSITIONS` and record the change's event.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from fabric_server.workflows import steps
from fabric_server.workflows.bindings import BindingError, apply_outputs, resolve_inputs
from fabric_server.workflows.effects import (
    NODE_WORK_KIND,
    RUN_START_KIND,
    TASK_EXPIRE_KIND,
    StartChildRuns,
    task_kind,
)
from fabric_server.workflows.node_state import (
    AwaitingChildren,
    AwaitingInput,
    AwaitingWorker,
    Idle,
    Sleeping,
)
from fabric_server.workflows.snapshots import NodeSnapshot, RunSnapshot, Step
from fabric_server.workflows.status import NodeStatus, RunStatus
from fabric_server.workflows.steps import Decision

# Child runs (sub-workflows, fan-out branches) nest at most this deep.
MAX_NESTING = 8


class NodeWork(enum.Enum):
    """What a `workflow.node` work item does for its node."""

    NOTHING = "nothing"  # the run ended, the node moved on, or the run is paused
    EXECUTE = "execute"  # begin an attempt of the operation
    WAKE = "wake"  # a sleeping node's wake-up came
    COLLECT = "collect"  # a child run the node waits for moved on


def node_work(run: RunSnapshot, node: NodeSnapshot) -> NodeWork:
    """What a `workflow.node` item for `node` should do now."""
    if run.status.is_terminal or node.status not in (NodeStatus.READY, NodeStatus.RUNNING):
        return NodeWork.NOTHING
    if run.status == RunStatus.PAUSED and node.status == NodeStatus.READY:
        # Dispatched before the pause: resuming the run queues it again.
        return NodeWork.NOTHING
    if isinstance(node.state, Sleeping):
        return NodeWork.WAKE
    if isinstance(node.state, AwaitingChildren):
        return NodeWork.COLLECT
    if isinstance(node.state, AwaitingWorker) and node.status == NodeStatus.RUNNING:
        return NodeWork.NOTHING  # its code worker's report finishes the attempt
    return NodeWork.EXECUTE


def owns_attempt(run: RunSnapshot, node: NodeSnapshot, attempt: int) -> bool:
    """Whether the outcome of `attempt` may still be recorded: the run has not ended and the
    node is still running that same attempt (not re-executed, cancelled or failed since)."""
    return (
        not run.status.is_terminal
        and node.status == NodeStatus.RUNNING
        and node.attempts == attempt
    )


def timeout_due_at(run: RunSnapshot, node: NodeSnapshot) -> dt.datetime | None:
    """When the node's wait for input times out; None when it no longer waits with a limit
    (answered, failed, or the run ended)."""
    state = node.state
    if run.status.is_terminal or node.status != NodeStatus.WAITING:
        return None
    return state.timeout_at if isinstance(state, AwaitingInput) else None


def seconds_until(moment: dt.datetime, now: dt.datetime) -> float:
    return (moment - now).total_seconds()


# -- run transitions ---------------------------------------------------------------------------


def queue_run(run: RunSnapshot, *, priority: int | None, now: dt.datetime) -> Step:
    """Hand a pending run to the workers, once (later calls change nothing). A run paused
    before it started is marked queued, but only handed over when it is resumed."""
    d = Decision(run, (), now)
    if run.queued_at is not None or run.status not in (RunStatus.PENDING, RunStatus.PAUSED):
        return d.done()
    if priority is not None:
        d.change_run(priority=priority)
    d.change_run(queued_at=now)
    d.emit("workflow.run.queued", {"priority": d.run.priority})
    if run.status == RunStatus.PENDING:
        d.enqueue(RUN_START_KIND, run.id)
    return d.done()


def start_run(run: RunSnapshot, nodes: Sequence[NodeSnapshot], *, now: dt.datetime) -> Step:
    """The run begins: its root nodes become ready."""
    d = Decision(run, nodes, now)
    d.move_run(RunStatus.RUNNING, {}, started_at=now)
    steps.advance(d)
    return d.done()


def pause_run(run: RunSnapshot, *, reason: str | None, now: dt.datetime) -> Step:
    """Hold the run: from now on no node is dispatched. Nodes already executing (or
    sleeping, waiting for input or for child runs) carry on and their outcome is recorded —
    a failure still fails the run, the last completion completes it — but what they unblock
    stays pending until `resume_run`. Work items of ready nodes stay queued and do nothing
    while the run is paused."""
    d = Decision(run, (), now)
    d.move_run(RunStatus.PAUSED, {"reason": reason})
    return d.done()


def resume_lookup(run: RunSnapshot, nodes: Sequence[NodeSnapshot]) -> tuple[str, list[str]]:
    """The work kind and references whose unfinished items `resume_run` needs to know of:
    the run's start item if it never started, else the items of its ready nodes."""
    if run.started_at is None:
        return RUN_START_KIND, [run.id] if run.queued_at is not None else []
    return NODE_WORK_KIND, [node.id for node in nodes if node.status == NodeStatus.READY]


def resume_run(
    run: RunSnapshot,
    nodes: Sequence[NodeSnapshot],
    *,
    open_refs: Collection[str],
    now: dt.datetime,
) -> Step:
    """Undo `pause_run`: back to `pending`, `waiting` or `running`, and dispatch every node
    that is ready or became ready meanwhile. `open_refs`: which of `resume_lookup`'s
    references still have an unfinished work item (those are not queued again)."""
    d = Decision(run, nodes, now)
    if run.started_at is None:
        target = RunStatus.PENDING
    elif any(node.status == NodeStatus.WAITING for node in nodes):
        target = RunStatus.WAITING
    else:
        target = RunStatus.RUNNING
    d.move_run(target, {"status": target.value})
    if run.started_at is None:
        if run.queued_at is not None and run.id not in open_refs:
            d.enqueue(RUN_START_KIND, run.id)
        return d.done()
    for node in nodes:
        if node.status == NodeStatus.READY and node.id not in open_refs:
            d.enqueue_node(node.key)  # its item came up while paused, and did nothing
    steps.advance(d)
    return d.done()


def cancel_run(
    run: RunSnapshot, nodes: Sequence[NodeSnapshot], *, reason: str | None, now: dt.datetime
) -> Step:
    """Stop the run: unfinished nodes are skipped, queued work is withdrawn, a running
    node's result will be discarded, and child runs are cancelled in turn."""
    d = Decision(run, nodes, now)
    for node in d.ordered():
        if not node.status.is_finished:
            steps.skip(d, node.key, "the run was cancelled")
    d.cancel_queued(RUN_START_KIND, run.id)
    d.move_run(RunStatus.CANCELLED, {"reason": reason}, completed_at=now)
    steps.after_end(d)
    return d.done()


def fail_run(
    run: RunSnapshot, nodes: Sequence[NodeSnapshot], *, error: str, now: dt.datetime
) -> Step:
    """End the run as failed: unfinished nodes are skipped, child runs cancelled."""
    d = Decision(run, nodes, now)
    steps.fail_run(d, error, None)
    return d.done()


# -- node transitions --------------------------------------------------------------------------


def begin_attempt(
    run: RunSnapshot, nodes: Sequence[NodeSnapshot], key: str, *, now: dt.datetime
) -> Step:
    """The node starts executing: one more attempt, its inputs read from the context."""
    d = Decision(run, nodes, now)
    node = d.node(key)
    inputs = resolve_inputs(run.context, run.graph[key].inputs)
    attempt = node.attempts + 1
    d.move_node(
        key,
        NodeStatus.RUNNING,
        {"operation": node.operation, "attempt": attempt, "input": inputs},
        attempts=attempt,
        input=inputs,
        started_at=node.started_at or now,
    )
    return d.done()


def node_succeeded(
    run: RunSnapshot,
    nodes: Sequence[NodeSnapshot],
    key: str,
    output: dict[str, Any],
    *,
    context_patch: Mapping[str, Any] | None = None,
    now: dt.datetime,
) -> Step:
    """The operation returned `output`: complete the node (see `complete_node`), or fail it
    when the output lacks a field its `outputs` bind."""
    try:
        return complete_node(run, nodes, key, output, context_patch=context_patch, now=now)
    except BindingError as exc:
        return fail_node(run, nodes, key, error=str(exc), now=now)


def complete_node(
    run: RunSnapshot,
    nodes: Sequence[NodeSnapshot],
    key: str,
    output: dict[str, Any],
    *,
    context_patch: Mapping[str, Any] | None = None,
    now: dt.datetime,
) -> Step:
    """Record the output, bind it into the context, then ready what it unblocked (or
    complete the run). Raises BindingError when an output binding names a missing field."""
    d = Decision(run, nodes, now)
    steps.complete(d, key, output, context_patch)
    return d.done()


def record_failure(
    run: RunSnapshot,
    nodes: Sequence[NodeSnapshot],
    key: str,
    *,
    error: str,
    permanent: bool,
    retry_delay: float,
    now: dt.datetime,
) -> Step:
    """An attempt failed: retry it after `retry_delay` seconds while the node's policy allows
    (and the failure is not `permanent`), else fail the node and with it the run."""
    d = Decision(run, nodes, now)
    node = d.node(key)
    if permanent or node.attempts > run.graph[key].policy.max_retries:
        steps.fail_node(d, key, error)
    else:
        payload = {
            "error": error,
            "attempt": node.attempts,
            "retry_in_seconds": round(retry_delay, 3),
        }
        d.move_node(key, NodeStatus.READY, payload, error=error)
        d.enqueue_node(key, retry_delay)
    return d.done()


def fail_node(
    run: RunSnapshot, nodes: Sequence[NodeSnapshot], key: str, *, error: str, now: dt.datetime
) -> Step:
    """Fail the node and with it the run."""
    d = Decision(run, nodes, now)
    steps.fail_node(d, key, error)
    return d.done()


def wait_for_input(
    run: RunSnapshot,
    nodes: Sequence[NodeSnapshot],
    key: str,
    *,
    prompt: str | None,
    timeout_seconds: float | None,
    now: dt.datetime,
) -> Step:
    """The node waits for `resume_node`, and a running run waits with it (a paused run stays
    paused). With `timeout_seconds`, a `workflow.node.timeout` item due then decides."""
    d = Decision(run, nodes, now)
    payload: dict[str, Any] = {"prompt": prompt}
    timeout_at = None
    if timeout_seconds is not None:
        timeout_at = now + dt.timedelta(seconds=timeout_seconds)
        payload["timeout_at"] = timeout_at.isoformat()
        d.enqueue_timeout(key, timeout_seconds)
    state = AwaitingInput(prompt, timeout_at, timeout_seconds)
    d.move_node(key, NodeStatus.WAITING, payload, state=state)
    if d.run.status == RunStatus.RUNNING:
        d.move_run(RunStatus.WAITING, {"prompt": prompt}, key)
    return d.done()


def rearm_timeout(
    run: RunSnapshot,
    nodes: Sequence[NodeSnapshot],
    key: str,
    *,
    seconds: float,
    now: dt.datetime,
) -> Step:
    """The time-out came early (by another process's clock): queue it again, due in
    `seconds`."""
    d = Decision(run, nodes, now)
    d.enqueue_timeout(key, seconds)
    return d.done()


def resume_node(
    run: RunSnapshot,
    nodes: Sequence[NodeSnapshot],
    key: str,
    data: dict[str, Any],
    *,
    now: dt.datetime,
) -> Step:
    """Complete a waiting node with `data` (its time-out withdrawn); the run runs again once
    no node waits. Raises BindingError when `data` lacks a field the node binds."""
    d = Decision(run, nodes, now)
    check_output(run, key, data)
    steps.resume(d, key, data)
    return d.done()


def time_out(
    run: RunSnapshot,
    nodes: Sequence[NodeSnapshot],
    key: str,
    *,
    decision: dict[str, Any] | str,
    now: dt.datetime,
) -> Step:
    """A waiting node ran out of time: complete it with the `decision` output as if it had
    been resumed with it (failing it if that output does not fit its bindings), or fail it
    with the `decision` error message."""
    d = Decision(run, nodes, now)
    state = d.node(key).state
    seconds = state.timeout_seconds if isinstance(state, AwaitingInput) else None
    d.emit("workflow.node.timed_out", {"timeout_seconds": seconds}, key)
    if isinstance(decision, str):
        steps.fail_node(d, key, decision)
        return d.done()
    try:
        check_output(run, key, decision)
    except BindingError as exc:
        steps.fail_node(d, key, str(exc))
    else:
        steps.resume(d, key, decision)
    return d.done()


def sleep(
    run: RunSnapshot,
    nodes: Sequence[NodeSnapshot],
    key: str,
    *,
    seconds: float,
    now: dt.datetime,
) -> Step:
    """Stay `running` and wake after `seconds` through a work item due then."""
    d = Decision(run, nodes, now)
    d.change_node(key, state=Sleeping(now + dt.timedelta(seconds=seconds), seconds))
    d.enqueue_node(key, seconds)
    return d.done()


def keep_sleeping(
    run: RunSnapshot,
    nodes: Sequence[NodeSnapshot],
    key: str,
    *,
    seconds: float,
    now: dt.datetime,
) -> Step:
    """The wake-up came early (by another process's clock): sleep `seconds` more."""
    d = Decision(run, nodes, now)
    d.enqueue_node(key, seconds)
    return d.done()


def spawn_children(
    run: RunSnapshot,
    nodes: Sequence[NodeSnapshot],
    key: str,
    *,
    definition_id: str | None,
    wanted: str | None,
    contexts: Sequence[dict[str, Any]],
    child_ids: Sequence[str],
    now: dt.datetime,
) -> Step:
    """Start one child run per context (with the ids given) of the definition found for
    `wanted`; the node waits for them. Fails the node when no definition was found
    (`definition_id` None) or the children would nest too deep."""
    d = Decision(run, nodes, now)
    if definition_id is None:
        steps.fail_node(d, key, f"workflow definition {wanted!r} was not found")
    elif run.depth + 1 > MAX_NESTING:
        steps.fail_node(d, key, f"child runs nest deeper than {MAX_NESTING} levels")
    else:
        d.effects.append(
            StartChildRuns(run.id, key, definition_id, tuple(contexts), tuple(child_ids))
        )
        d.change_node(key, state=AwaitingChildren(tuple(child_ids)))
    return d.done()


def check_output(run: RunSnapshot, key: str, output: Mapping[str, Any]) -> None:
    """Raise BindingError if `output` lacks a field the node's `outputs` bind."""
    bindings = run.graph[key].outputs
    if bindings:
        apply_outputs(copy.deepcopy(dict(run.context)), bindings, output)


def dispatch(
    run: RunSnapshot,
    nodes: Sequence[NodeSnapshot],
    key: str,
    *,
    operation: str,
    task: Mapping[str, Any],
    schedule_to_start_seconds: float | None,
    now: dt.datetime,
) -> Step:
    """Stay `running` while a code worker serving `operation` takes and runs the task (its
    report finishes the attempt); with `schedule_to_start_seconds`, the task expires if no
    worker took it by then."""
    d = Decision(run, nodes, now)
    node = d.node(key)
    d.change_node(key, state=AwaitingWorker(operation))
    d.emit("workflow.node.dispatched", {"operation": operation, "attempt": node.attempts}, key)
    d.enqueue(task_kind(operation), node.id, dict(task))
    if schedule_to_start_seconds is not None:
        expiry = {
            "run_id": run.id,
            "attempt": node.attempts,
            "operation": operation,
            "seconds": schedule_to_start_seconds,
        }
        d.enqueue(TASK_EXPIRE_KIND, node.id, expiry, schedule_to_start_seconds)
    return d.done()


def task_reported(
    run: RunSnapshot,
    nodes: Sequence[NodeSnapshot],
    key: str,
    *,
    output: dict[str, Any] | None,
    error: str | None,
    permanent: bool,
    retry_delay: float,
    now: dt.datetime,
) -> Step:
    """A code worker reported the attempt's outcome: `output` completes the node (see
    `node_succeeded`); `error` is a failure under the node's retry policy (see
    `record_failure`)."""
    settled = [replace(n, state=Idle()) if n.key == key else n for n in nodes]
    if output is not None:
        return node_succeeded(run, settled, key, output, now=now)
    return record_failure(
        run,
        settled,
        key,
        error=error or "the code worker reported a failure",
        permanent=permanent,
        retry_delay=retry_delay,
        now=now,
    )
