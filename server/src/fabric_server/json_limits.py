"""Limits on the shape of JSON the server accepts, and a safe way to render what it holds.

Deeply nested values cost memory and recursion everywhere they travel (validation, storage,
rendering, webhooks), and a value nested deeper than the response models can render would
break every list that includes it. So request bodies are refused past a nesting depth (see
`api.body_guard`), and rendering falls back to clipping what is too deep instead of failing.

PostgreSQL cannot store the NUL character in text or JSON, so strings holding it are refused
at the door too, wherever they come from (body, query, path).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

# Deeper than this, a stored value is clipped when rendered (the response models stop at 255).
RENDER_DEPTH = 128
CLIPPED = "[clipped: nested too deeply]"

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    """Where a value breaks a limit (`path` dotted, list indices as numbers) and why."""

    path: str
    message: str


def find_problem(value: Any, max_depth: int, *, nul: bool = True) -> Problem | None:
    """The first place in a parsed JSON value nested deeper than `max_depth` containers,
    or (with `nul`) holding a NUL character in a key or a string. Iterative: any depth."""
    stack: list[tuple[Any, tuple[str, ...], int]] = [(value, (), 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if nul and "\x00" in item:
                return Problem(_dotted(path), "must not contain the NUL character (\\u0000)")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= max_depth:
            return Problem(_dotted(path), f"is nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            for key, child in reversed(item.items()):
                if nul and "\x00" in key:
                    return Problem(
                        _dotted((*path, key.replace("\x00", ""))),
                        "the key must not contain the NUL character (\\u0000)",
                    )
                stack.append((child, (*path, key), depth + 1))
        else:
            for index in range(len(item) - 1, -1, -1):
                stack.append((item[index], (*path, str(index)), depth + 1))
    return None


def clip_depth(value: Any, max_depth: int = RENDER_DEPTH) -> Any:
    """`value` with every container deeper than `max_depth` replaced by a marker string."""
    if not isinstance(value, dict | list):
        return value
    if max_depth <= 0:
        return CLIPPED
    if isinstance(value, dict):
        return {key: clip_depth(child, max_depth - 1) for key, child in value.items()}
    return [clip_depth(child, max_depth - 1) for child in value]


def render(model: type[ModelT], data: Mapping[str, Any]) -> ModelT:
    """`data` as a `model`; a value nested too deeply to render is clipped rather than
    failing the response (and every list that holds it)."""
    try:
        found = model.model_validate(data)
        if find_problem(dict(data), RENDER_DEPTH, nul=False) is not None:
            found.model_dump(mode="json")  # deep: does it still render?
        return found
    except (ValueError, RecursionError):
        clipped = {key: clip_depth(child) for key, child in data.items()}
        return model.model_validate(clipped)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)
