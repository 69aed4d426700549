"""What an operation is: config checks at save time, and `run` returning an outcome.

Operations never touch the database. They return an outcome and the executor records it,
in one transaction with the work item's completion:

* `Completed(output)` — the node is done; its output is bound into the run context.
* `WaitForInput(prompt, timeout_seconds)` — the node waits for `resume_node` (the run goes
  `waiting`); when it is still waiting after `timeout_seconds`, `timed_out` decides.
* `Sleep(seconds)` — wake the node later (`wake` then finishes it) without holding a worker.
* `SpawnChildren(...)` — start child runs; `collect` finishes the node once they end.
* `Dispatch(...)` — hand the node to a code worker; its report finishes the attempt.

A `NodeError` fails the node at once; any other exception is transient and retried
(`TransientNodeError` for failures whose message is already clear).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fabric_server.usage.models import UsageRecord
from fabric_server.workflows.node_state import Sleeping
from fabric_server.workflows.status import RunStatus
from fabric_server.workflows.templating import TemplateError, render_value


class NodeError(Exception):
    """A failure retrying cannot fix (bad input, missing template variable, refused URL…)."""


class TransientNodeError(Exception):
    """A failure worth retrying, with a message meant for users (other exceptions are
    retried too, reported with their type name)."""


@dataclass(frozen=True)
class NodeSpec:
    """A normalised node, as config checks see it: with the keys of every node of its
    definition and of those that run before it (its dependencies, directly or not)."""

    key: str
    operation: str
    config: Mapping[str, Any]
    input_names: tuple[str, ...]
    node_keys: frozenset[str] = frozenset()
    upstream: frozenset[str] = frozenset()


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
    #: The outputs of every node that ran before this one (`{{nodes.<key>.…}}`), by key.
    node_outputs: Mapping[str, Any] = field(default_factory=dict)
    #: Most bytes one config field may render to (FABRIC_WORKFLOW_MAX_RENDERED_BYTES).
    max_rendered_bytes: int = 1_048_576

    def render_config(self, key: str, *, keep_types: bool = False) -> Any:
        """The config value `key` with its templates rendered (see `templating`); a
        reference with no value fails the node, naming where it is (`config.url: …`)."""
        scope = {"context": self.context, "inputs": self.inputs, "nodes": self.node_outputs}
        try:
            return render_value(
                self.config[key],
                scope,
                keep_types=keep_types,
                where=f"config.{key}",
                max_bytes=self.max_rendered_bytes,
            )
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


@dataclass(frozen=True)
class Dispatch:
    """Hand the node to a code worker serving `operation`: a task with these inputs and
    (rendered) config; the worker's report finishes the attempt. `secret_names`: the
    organization's secrets the task receives (only those the node names)."""

    operation: str
    inputs: dict[str, Any]
    config: dict[str, Any]
    secret_names: tuple[str, ...] = ()
    schedule_to_start_seconds: float | None = None


Outcome = Completed | WaitForInput | Sleep | SpawnChildren | Dispatch


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
    #: Config fields holding templates: checked when the definition is saved, rendered with
    #: `NodeRun.render_config` when the node runs.
    templated: ClassVar[tuple[str, ...]] = ()
    #: `run` computes its outcome without waiting on anything (no I/O, no sleep): the node
    #: can begin and finish in one transaction (`run_instantly`).
    instant: ClassVar[bool] = False

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


def run_instantly(operation: Operation, node: NodeRun) -> Outcome:
    """The outcome of an `instant` operation, computed without an event loop (its `run`
    never suspends). Raises what `run` raises."""
    coroutine = operation.run(node)
    try:
        coroutine.send(None)
    except StopIteration as done:
        outcome: Outcome = done.value
        return outcome
    coroutine.close()
    raise RuntimeError(f"{operation.name} is marked instant but waited on something")
