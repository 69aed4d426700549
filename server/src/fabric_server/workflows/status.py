"""Statuses of workflow runs and of their nodes, the changes between them, and the event each
change records."""

from __future__ import annotations

import enum

from fabric_server.transitions import TransitionTable


class RunStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """The run ended: nothing changes it any more."""
        return self in TERMINAL_RUN_STATUSES


class NodeStatus(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_NODE_STATUSES


TERMINAL_RUN_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
FINISHED_NODE_STATUSES = frozenset({NodeStatus.COMPLETED, NodeStatus.FAILED, NodeStatus.SKIPPED})

_R = RunStatus
RUN_TRANSITIONS = TransitionTable[RunStatus](
    "workflow run",
    [
        ((_R.PENDING,), _R.RUNNING, "workflow.run.started"),
        # a node waits for input / the last waiting node was answered
        ((_R.RUNNING,), _R.WAITING, "workflow.run.waiting"),
        ((_R.WAITING,), _R.RUNNING, "workflow.run.resumed"),
        ((_R.PENDING, _R.RUNNING, _R.WAITING), _R.PAUSED, "workflow.run.paused"),
        # resuming returns to where the run stood: never started, running, or waiting
        ((_R.PAUSED,), _R.PENDING, "workflow.run.resumed"),
        ((_R.PAUSED,), _R.RUNNING, "workflow.run.resumed"),
        ((_R.PAUSED,), _R.WAITING, "workflow.run.resumed"),
        # the last node completed (work already under way finishes while paused)
        ((_R.RUNNING, _R.PAUSED), _R.COMPLETED, "workflow.run.completed"),
        ((_R.PENDING, _R.RUNNING, _R.WAITING, _R.PAUSED), _R.FAILED, "workflow.run.failed"),
        ((_R.PENDING, _R.RUNNING, _R.WAITING, _R.PAUSED), _R.CANCELLED, "workflow.run.cancelled"),
    ],
)

_N = NodeStatus
NODE_TRANSITIONS = TransitionTable[NodeStatus](
    "workflow node",
    [
        ((_N.PENDING,), _N.READY, "workflow.node.ready"),
        # an attempt begins; RUNNING again when a worker died during the previous attempt
        ((_N.READY, _N.RUNNING), _N.RUNNING, "workflow.node.started"),
        ((_N.RUNNING,), _N.READY, "workflow.node.retrying"),
        ((_N.RUNNING,), _N.WAITING, "workflow.node.waiting"),
        ((_N.RUNNING, _N.WAITING), _N.COMPLETED, "workflow.node.completed"),
        # READY: its work item kept failing before an attempt could begin
        ((_N.READY, _N.RUNNING, _N.WAITING), _N.FAILED, "workflow.node.failed"),
        ((_N.PENDING, _N.READY, _N.RUNNING, _N.WAITING), _N.SKIPPED, "workflow.node.skipped"),
    ],
)
