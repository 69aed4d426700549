"""`text.transform_basic`: small, deterministic string transforms."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from fabric_server.workflows.nodes.base import (
    Completed,
    NodeError,
    NodeRun,
    NodeSpec,
    Operation,
    Outcome,
    check_types,
)

_SIMPLE: dict[str, Callable[[str], str]] = {
    "upper": str.upper,
    "lower": str.lower,
    "trim": str.strip,
    "title": str.title,
    "capitalize": str.capitalize,
}
TRANSFORMS = (*_SIMPLE, "template", "replace", "split", "join", "truncate")


class TextTransform(Operation):
    """Config `operation`: upper, lower, trim, title, capitalize (input `text` → `text`);
    `template` (config `template` rendered → `text`); `replace` (config `old`, `new`);
    `truncate` (config `length`); `split` (config `separator`, default whitespace →
    `items`, `count`); `join` (input `items`, config `separator`, default "" → `text`)."""

    name = "text.transform_basic"
    instant = True
    max_retries = 0
    templated = ("template",)

    def check(self, node: NodeSpec) -> list[str]:
        config = node.config
        problems = check_types(
            config,
            {"operation": str, "template": str, "old": str, "new": str, "separator": str},
        )
        problems += check_types(config, {"length": int})
        transform = config.get("operation")
        if transform not in TRANSFORMS:
            problems.append(f"config.operation must be one of {', '.join(TRANSFORMS)}")
        elif transform == "template" and not isinstance(config.get("template"), str):
            problems.append("the template transform needs config.template")
        elif transform == "replace" and not isinstance(config.get("old"), str):
            problems.append("the replace transform needs config.old (and config.new)")
        elif transform == "truncate" and not _non_negative_int(config.get("length")):
            problems.append("the truncate transform needs config.length (an integer >= 0)")
        return problems

    async def run(self, node: NodeRun) -> Outcome:
        config = node.config
        transform = config["operation"]
        if transform == "template":
            return Completed({"text": node.render_config("template")})
        if transform == "join":
            items = node.inputs.get("items", node.inputs.get("text"))
            if not isinstance(items, list):
                raise NodeError("the join transform needs a list input `items`")
            separator = config.get("separator") or ""
            return Completed({"text": separator.join(_as_text(i) for i in items)})
        text = _text_input(node.inputs)
        if transform == "split":
            items = text.split(config.get("separator") or None)
            return Completed({"items": items, "count": len(items)})
        return Completed({"text": _apply(transform, text, config)})


def _apply(transform: str, text: str, config: Mapping[str, Any]) -> str:
    if transform == "replace":
        return text.replace(config["old"], config.get("new") or "")
    if transform == "truncate":
        return text[: config["length"]]
    return _SIMPLE[transform](text)


def _text_input(inputs: Mapping[str, Any]) -> str:
    text = inputs.get("text")
    if not isinstance(text, str):
        state = "is not set" if text is None else "must be a string"
        raise NodeError(f"input `text` {state}")
    return text


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
