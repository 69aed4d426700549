"""What a decision of the run state machine asks the world to do, as plain data.

The pure core (`machine`) returns these; the shell (`RunLifecycle`) performs them, in order,
in the caller's transaction. Each names every value it needs, so a writer that batches them
(SQLAlchemy Core rather than the ORM) needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NODE_WORK_KIND = "workflow.node"
RUN_START_KIND = "workflow.run.start"
RUN_CANCEL_KIND = "workflow.run.cancel"
# Due when a node waiting for input runs out of time (an approval's `timeout_seconds`).
NODE_TIMEOUT_KIND = "workflow.node.timeout"
# Due when a code worker's task waited too long for a worker (`schedule_to_start_timeout`).
TASK_EXPIRE_KIND = "workflow.task.expire"
WORK_KINDS = (
    NODE_WORK_KIND,
    RUN_START_KIND,
    RUN_CANCEL_KIND,
    NODE_TIMEOUT_KIND,
    TASK_EXPIRE_KIND,
)
#: Work item kinds of code workers' tasks are `worker:<operation>`; code workers take them
#: over HTTP (`fabric_server.workers`), never this server's own workers.
TASK_KIND_PREFIX = "worker:"
# Each work item is one step; it is only re-attempted when its worker died or hit an
# unexpected error. Node retries are separate (counted on the node, per its policy).
WORK_ATTEMPTS = 5


def task_kind(operation: str) -> str:
    """The work item kind of code workers' tasks of `operation`."""
    return TASK_KIND_PREFIX + operation


@dataclass(frozen=True)
class RecordEvent:
    """Write an event of the run (with `node_key` for a node's event)."""

    kind: str
    organization_id: str
    run_id: str
    node_key: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Enqueue:
    """Queue a work item, due after `delay_seconds`."""

    kind: str
    ref_id: str
    organization_id: str
    priority: int
    payload: dict[str, Any] = field(default_factory=dict)
    delay_seconds: float = 0.0
    max_attempts: int = WORK_ATTEMPTS


@dataclass(frozen=True)
class CancelQueued:
    """Withdraw the queued (not yet claimed) work items of `kind` for `ref_id`."""

    kind: str
    ref_id: str


@dataclass(frozen=True)
class CancelChildRuns:
    """Queue a `workflow.run.cancel` item for every unfinished child run of `run_id` (the
    children are found in the database; this transaction never locks them)."""

    run_id: str
    organization_id: str
    priority: int


@dataclass(frozen=True)
class WakeParentNode:
    """Queue a `workflow.node` item for the parent's node that waits on this run."""

    parent_run_id: str
    parent_node_key: str
    organization_id: str
    priority: int


@dataclass(frozen=True)
class StartChildRuns:
    """Create and queue one child run per context, with the given ids, of the definition
    `definition_id`, as children of the node `node_key` of `run_id`."""

    run_id: str
    node_key: str
    definition_id: str
    contexts: tuple[dict[str, Any], ...]
    run_ids: tuple[str, ...]


Effect = RecordEvent | Enqueue | CancelQueued | CancelChildRuns | WakeParentNode | StartChildRuns
