"""Operations over child runs (sub-workflows, fan-out) and gathering parallel results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fabric_server.workflows.bindings import deep_merge
from fabric_server.workflows.nodes.base import (
    ChildRun,
    Completed,
    NodeError,
    NodeRun,
    NodeSpec,
    Operation,
    Outcome,
    SpawnChildren,
    check_types,
)
from fabric_server.workflows.status import RunStatus

_TARGET_KEYS = ("workflow_definition_id", "workflow_name")
_UNSUCCESSFUL = (RunStatus.FAILED, RunStatus.CANCELLED)


def _check_target(config: Mapping[str, Any], keys: tuple[str, ...]) -> list[str]:
    problems = check_types(config, dict.fromkeys(keys, str))
    if not problems and not any(config.get(key) for key in keys):
        problems.append(f"needs config.{' or config.'.join(keys)} naming the workflow to run")
    return problems


def _target(config: Mapping[str, Any]) -> tuple[str | None, str | None]:
    name = config.get("workflow_name") or config.get("branch_kind")
    return config.get("workflow_definition_id"), name


def _failure(child: ChildRun, what: str) -> NodeError:
    if child.status == RunStatus.CANCELLED:
        return NodeError(f"{what} (run {child.id}) was cancelled")
    return NodeError(f"{what} (run {child.id}) failed: {child.error or 'no error recorded'}")


class Subworkflow(Operation):
    """Config `workflow_definition_id`, or `workflow_name` in the same organization: runs it
    as a child run whose context is this node's bound inputs. Output: `run_id`, `status`,
    `output` and `context` of the child once it completes; its failure fails the node."""

    name = "workflow.subworkflow"
    instant = True
    max_retries = 0

    def check(self, node: NodeSpec) -> list[str]:
        return _check_target(node.config, _TARGET_KEYS)

    async def run(self, node: NodeRun) -> Outcome:
        definition_id, name = _target(node.config)
        return SpawnChildren(definition_id, name, [dict(node.inputs)])

    def collect(self, node: NodeRun, children: Sequence[ChildRun]) -> Outcome | None:
        child = children[0]
        if child.status in _UNSUCCESSFUL:
            raise _failure(child, "the sub-workflow")
        if child.status != RunStatus.COMPLETED:
            return None
        return Completed(
            {
                "run_id": child.id,
                "status": child.status,
                "output": child.output,
                "context": child.context,
            }
        )


class FanOut(Operation):
    """Input `items` (a list); config `workflow_definition_id`, `workflow_name` or
    `branch_kind` (a definition name): one child run per item with context
    `{"item": x, "index": i}`. Output, in item order: `items`, `results` (each child's
    output), `count`, `run_ids`. The first failed branch fails the node."""

    name = "workflow.fan_out"
    instant = True
    max_retries = 0

    def __init__(self, *, max_items: int) -> None:
        self.max_items = max_items

    def check(self, node: NodeSpec) -> list[str]:
        problems = _check_target(node.config, (*_TARGET_KEYS, "branch_kind"))
        if "items" not in node.input_names:
            problems.append("workflow.fan_out needs an `items` input (a list in the context)")
        return problems

    async def run(self, node: NodeRun) -> Outcome:
        items = node.inputs.get("items")
        if not isinstance(items, list):
            state = "is not set" if items is None else "must be a list"
            raise NodeError(f"input `items` {state}")
        if len(items) > self.max_items:
            raise NodeError(f"{len(items)} items is more than the fan-out limit {self.max_items}")
        if not items:
            return Completed({"items": [], "results": [], "count": 0, "run_ids": []})
        definition_id, name = _target(node.config)
        contexts = [{"item": item, "index": index} for index, item in enumerate(items)]
        return SpawnChildren(definition_id, name, contexts)

    def collect(self, node: NodeRun, children: Sequence[ChildRun]) -> Outcome | None:
        for index, child in enumerate(children):
            if child.status in _UNSUCCESSFUL:
                raise _failure(child, f"branch {index}")
        if any(child.status != RunStatus.COMPLETED for child in children):
            return None
        return Completed(
            {
                "items": node.inputs.get("items", []),
                "results": [child.output for child in children],
                "count": len(children),
                "run_ids": [child.id for child in children],
            }
        )


class FanIn(Operation):
    """Gathers its inputs (or, without inputs, the outputs of the nodes it depends on), in
    order. `mode: concat` (default): lists are concatenated — a fan-out output contributes
    its `results`, another object its `items` list, anything else is appended — into
    `items` and `count`. `mode: merge`: objects are deep-merged into `merged`."""

    name = "workflow.fan_in"
    instant = True
    max_retries = 0

    def check(self, node: NodeSpec) -> list[str]:
        mode = node.config.get("mode", "concat")
        return [] if mode in ("concat", "merge") else ["config.mode must be concat or merge"]

    async def run(self, node: NodeRun) -> Outcome:
        sources = list(node.inputs.values()) if node.inputs else list(node.upstream.values())
        if node.config.get("mode") == "merge":
            merged: dict[str, Any] = {}
            for source in sources:
                if isinstance(source, Mapping):
                    merged = deep_merge(merged, source)
            return Completed({"merged": merged})
        items: list[Any] = []
        for source in sources:
            items.extend(_as_items(source))
        return Completed({"items": items, "count": len(items)})


def _as_items(source: Any) -> list[Any]:
    if source is None:
        return []
    if isinstance(source, list):
        return source
    if isinstance(source, Mapping):
        for key in ("results", "items"):
            if isinstance(source.get(key), list):
                return list(source[key])
    return [source]
