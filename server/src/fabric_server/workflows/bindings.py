"""Context paths (`$context.a.b`): parsing, reading, writing, and merging JSON values."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CONTEXT_PREFIX = "$context."
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class BindingError(ValueError):
    """A binding path that is not `$context.<dot.path>`."""


@dataclass(frozen=True)
class Binding:
    """One input or output of a node: the field `name`, at context `path`."""

    name: str
    path: str


# Bindings as a run's graph holds them, or as `{name, path}` objects from JSON.
BindingLike = Binding | Mapping[str, str]


def _pair(binding: BindingLike) -> tuple[str, str]:
    if isinstance(binding, Binding):
        return binding.name, binding.path
    return binding["name"], binding["path"]


def parse_path(path: object) -> tuple[str, ...]:
    """The segments of a `$context.<dot.path>` binding."""
    if not isinstance(path, str) or not path.startswith(CONTEXT_PREFIX):
        raise BindingError(f"binding paths must look like `$context.<dot.path>`, got {path!r}")
    segments = tuple(path[len(CONTEXT_PREFIX) :].split("."))
    bad = [s for s in segments if not _SEGMENT.match(s)]
    if bad:
        raise BindingError(
            f"binding path {path!r} has an invalid segment {bad[0]!r} "
            "(letters, digits, `_` and `-` only)"
        )
    return segments


MISSING = object()


def lookup(value: Any, segments: tuple[str, ...]) -> Any:
    """Follow `segments` through dicts (by key) and lists (by index); `MISSING` if absent."""
    for segment in segments:
        if isinstance(value, Mapping):
            if segment not in value:
                return MISSING
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return MISSING
    return value


def resolve_inputs(context: Mapping[str, Any], bindings: Iterable[BindingLike]) -> dict[str, Any]:
    """Input values by name, read from the context; a path with nothing behind it is left out."""
    resolved: dict[str, Any] = {}
    for name, path in map(_pair, bindings):
        value = lookup(context, parse_path(path))
        if value is not MISSING:
            resolved[name] = copy.deepcopy(value)
    return resolved


def apply_outputs(
    context: dict[str, Any], bindings: Iterable[BindingLike], output: Mapping[str, Any]
) -> None:
    """Write each bound output field into the context (in place).

    Raises BindingError naming the fields the output lacks, before writing anything.
    """
    pairs = [_pair(binding) for binding in bindings]
    missing = [name for name, _ in pairs if name not in output]
    if missing:
        have = ", ".join(sorted(output)) or "nothing"
        raise BindingError(
            f"output has no field {', '.join(repr(m) for m in missing)} to bind (it has: {have})"
        )
    for name, path in pairs:
        write(context, path, output[name])


def write(context: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` in `context` (in place), creating objects on the way; replaces what was there."""
    segments = parse_path(path)
    target = context
    for segment in segments[:-1]:
        child = target.get(segment)
        if not isinstance(child, dict):
            child = {}
            target[segment] = child
        target = child
    target[segments[-1]] = copy.deepcopy(value)


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: `patch` merged into `base`; objects merge key by key, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in patch.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
