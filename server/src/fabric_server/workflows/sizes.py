"""Sizes of JSON values, measured without building their text, and limits on them.

`size_within` walks a value and stops as soon as its size passes the limit, so measuring a
huge value (or the same large value referenced many times) costs no more than the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class TooLarge(Exception):
    """A value passed its size limit while it was measured or built."""


def size_within(value: Any, limit: int) -> int:
    """The approximate size of `value` as compact JSON; raises TooLarge once past `limit`."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, Mapping):
            total += 2
            for key, member in item.items():
                total += len(str(key)) + 4
                stack.append(member)
        elif isinstance(item, list | tuple):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += len(str(item))
        if total > limit:
            raise TooLarge
    return total


class Budget:
    """What may still be produced: `spend` raises TooLarge once more than `limit` was."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.remaining = limit

    def spend(self, size: int) -> None:
        self.remaining -= size
        if self.remaining < 0:
            raise TooLarge


OUTPUT_TOO_LARGE = "node_output_too_large"
CONTEXT_TOO_LARGE = "context_too_large"


@dataclass(frozen=True)
class NodeLimits:
    """Sizes a workflow node may produce (FABRIC_WORKFLOW_MAX_* settings)."""

    rendered_bytes: int = 1_048_576
    output_bytes: int = 2_097_152
    context_bytes: int = 8_388_608

    def refusal(
        self, context: Any, output: Any, context_patch: Mapping[str, Any] | None
    ) -> str | None:
        """Why a node's output may not be kept (the node fails with it), or None: the output
        is larger than its limit, or the run context would grow past its own."""
        try:
            size_within(output, self.output_bytes)
        except TooLarge:
            return (
                f"{OUTPUT_TOO_LARGE}: the node's output is larger than {self.output_bytes} "
                "bytes (FABRIC_WORKFLOW_MAX_NODE_OUTPUT_BYTES)"
            )
        try:
            size_within([context, output, context_patch or {}], self.context_bytes)
        except TooLarge:
            return (
                f"{CONTEXT_TOO_LARGE}: with this node's output the run context would be larger "
                f"than {self.context_bytes} bytes (FABRIC_WORKFLOW_MAX_CONTEXT_BYTES)"
            )
        return None
