"""What a node carries between executions, as a tagged union.

Stored in the JSON `state` column of `workflow_node_states`, in the shape rows have always
had (so existing rows load):

| State | JSON |
|---|---|
| `Idle` | `{}` |
| `Sleeping` | `{"wake_at": iso, "sleep_seconds": n}` |
| `AwaitingChildren` | `{"children": [run ids]}` |
| `AwaitingInput` | `{"prompt": p}`, plus `"timeout_seconds"` and `"timeout_at"` with a time limit |
| `AwaitingWorker` | `{"worker_operation": name}` |
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Idle:
    """Nothing to carry: when dispatched, the node executes its operation."""


@dataclass(frozen=True)
class Sleeping:
    """A `workflow.delay` waits, without a worker, until `wake_at`."""

    wake_at: dt.datetime
    seconds: float


@dataclass(frozen=True)
class AwaitingChildren:
    """The node started these child runs and completes once they end."""

    child_ids: tuple[str, ...]


@dataclass(frozen=True)
class AwaitingInput:
    """The node waits for `resume_node`; with a time limit, it decides alone at
    `timeout_at`."""

    prompt: str | None
    timeout_at: dt.datetime | None = None
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class AwaitingWorker:
    """The node's task waits for (or runs in) a code worker serving `operation`; the
    worker's report records the attempt's outcome."""

    operation: str


NodeState = Idle | Sleeping | AwaitingChildren | AwaitingInput | AwaitingWorker


def parse_state(raw: Mapping[str, Any] | None) -> NodeState:
    """The state stored as `raw` (see the table above)."""
    if not raw:
        return Idle()
    if "worker_operation" in raw:
        return AwaitingWorker(str(raw["worker_operation"]))
    if "children" in raw:
        return AwaitingChildren(tuple(raw["children"]))
    if "wake_at" in raw:
        return Sleeping(
            dt.datetime.fromisoformat(raw["wake_at"]), float(raw.get("sleep_seconds", 0.0))
        )
    if "prompt" in raw or "timeout_at" in raw:
        timeout_at = raw.get("timeout_at")
        return AwaitingInput(
            raw.get("prompt"),
            dt.datetime.fromisoformat(timeout_at) if timeout_at is not None else None,
            raw.get("timeout_seconds"),
        )
    raise ValueError(f"unknown node state {sorted(raw)}")


def dump_state(state: NodeState) -> dict[str, Any]:
    """The JSON to store for `state`; `parse_state(dump_state(s))` equals `s`."""
    match state:
        case Idle():
            return {}
        case Sleeping(wake_at, seconds):
            return {"wake_at": wake_at.isoformat(), "sleep_seconds": seconds}
        case AwaitingWorker(operation):
            return {"worker_operation": operation}
        case AwaitingChildren(child_ids):
            return {"children": list(child_ids)}
        case AwaitingInput(prompt, timeout_at, timeout_seconds):
            raw: dict[str, Any] = {"prompt": prompt}
            if timeout_at is not None:
                raw["timeout_seconds"] = timeout_seconds
                raw["timeout_at"] = timeout_at.isoformat()
            return raw
