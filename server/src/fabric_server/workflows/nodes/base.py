"""What an operation is: config checks at save time, and `run` returning an outcome.

Operations never touch the database. They return an outcome and the executor records it,
in one transaction with the work item's completion:

* `Completed(output)` — the node is done; its output is bound into the run context.
* `WaitForInput(prompt, timeout_seconds)` — the node waits for `resume_node` (the run goes
  `waiting`); when it is still waiting after `timeout_seconds`, `timed_out` decides.
* `Sleep(seconds)` — wake the node later (`wake` then finishes it) without holding a worker.
* `SpawnChildren(...)` — start child runs; `collect` finishes the node once they end.

A `NodeError` fails the node at once; any other exception is transient and retried
(`TransientNodeError` for failures whose message is already clear).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fabric_server.db.models import UsageRecord
from fabric_server.workflows.node_state import Sleeping
from fabric_server.workflows.status import RunStatus
from fabric_server.workflows.templating import TemplateError, render, variables


class NodeError(Exception):
    """A failure retrying cannot fix (bad input, missing template variable, refused URL…)."""


class TransientNodeError(Exception):
    """A failure worth retrying, with a message meant for users (other exceptions are
    retried too, reported with their type name)."""


@dataclass(frozen=True)
class NodeSpec:
    """A normalised node, as config checks see it."""

    key: str
    operation: str
    config: Mapping[str, Any]
    input_names: tuple[str, ...]


@dataclass(frozen=True)
class NodeRun:
    """What an executing node sees."""

    run_id: str
    organization_id: str
    created_by: str | None
    node_key: str
    operation: str
    config: Mapping[str, Any]
    inputs: Mapping[str, Any]
    context: Mapping[str, Any]
    upstream: Mapping[str, Mapping[str, Any] | None]
    attempt: int
    timeout_seconds: float

    def render(self, template: str) -> str:
        """Render a `{{context.x}}` / `{{inputs.x}}` template; a missing value fails the node."""
        try:
            return render(template, {"context": self.context, "inputs": self.inputs})
        except TemplateError as exc:
            raise NodeError(str(exc)) from exc


@dataclass(frozen=True)
class Completed:
    output: dict[str, Any]
    context_patch: dict[str, Any] | None = None
    usage: tuple[UsageRecord, ...] = ()


@dataclass(frozen=True)
class WaitForInput:
    prompt: str | None = None
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class SpawnChildren:
    """Start one child run per context, of the definition named by id or by name."""

    definition_id: str | None
    definition_name: str | None
    contexts: list[dict[str, Any]] = field(default_factory=list)


Outcome = Completed | WaitForInput | Sleep | SpawnChildren


@dataclass(frozen=True)
class ChildRun:
    id: str
    status: RunStatus
    output: dict[str, Any] | None
    context: dict[str, Any]
    error: str | None


class Operation(abc.ABC):
    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    #: Retries after a transient failure when neither the node nor `defaults` say otherwise.
    max_retries: ClassVar[int] = 3
    #: Without `outputs` bindings, store the output in the context under the node key.
    writes_output: ClassVar[bool] = True

    def check(self, node: NodeSpec) -> list[str]:
        """Problems with the node's config, as messages; empty when it is fine."""
        return []

    @abc.abstractmethod
    async def run(self, node: NodeRun) -> Outcome: ...

    def wake(self, node: NodeRun, state: Sleeping) -> Outcome:
        """Finish a node that slept (only for operations that return `Sleep`)."""
        raise TypeError(f"{self.name} never sleeps, so it has nothing to wake")

    def collect(self, node: NodeRun, children: Sequence[ChildRun]) -> Outcome | None:
        """Finish a node whose child runs moved on; None while it should keep waiting."""
        raise TypeError(f"{self.name} starts no child runs, so it has none to collect")

    def timed_out(self, node: NodeRun) -> Completed:
        """The output of a node whose wait for input ran out of time, as if it had been
        resumed with it; raise `NodeError` to fail the node instead (only for operations that
        return `WaitForInput` with a timeout)."""
        raise TypeError(f"{self.name} never waits with a time limit")


def check_types(
    config: Mapping[str, Any], expected: Mapping[str, type | tuple[type, ...]]
) -> list[str]:
    """Type problems of the config keys that are present (absent keys are fine)."""
    problems = []
    for key, types in expected.items():
        if key in config and config[key] is not None and not _is_instance(config[key], types):
            problems.append(f"config.{key} must be {_describe(types)}")
    return problems


def check_template(config: Mapping[str, Any], key: str) -> list[str]:
    value = config.get(key)
    if not isinstance(value, str):
        return []
    try:
        variables(value)
    except TemplateError as exc:
        return [f"config.{key}: {exc}"]
    return []


def _is_instance(value: Any, types: type | tuple[type, ...]) -> bool:
    options = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in options:
        return False  # True is an int in Python, but not a number in a config
    return isinstance(value, options)


_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    dict: "an object",
    list: "a list",
}


def _describe(types: type | tuple[type, ...]) -> str:
    options = types if isinstance(types, tuple) else (types,)
    if set(options) == {int, float}:
        return "a number"
    return " or ".join(_NAMES.get(t, t.__name__) for t in options)
