"""Keep event payloads small: events are stored, streamed and copied into every webhook
delivery, so a large value (a job's output, a node's result) is not carried along whole.

A payload whose JSON is larger than the limit keeps its small fields; each larger field is
left out and named in `truncated`, with `payload_bytes` the size of the whole. The job or
run the event is about still holds the full value.
"""

from __future__ import annotations

import json
from typing import Any


def clip_payload(payload: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """`payload` unchanged when its JSON fits in `max_bytes`, else without its large fields."""
    size = _size(payload)
    if size <= max_bytes:
        return payload
    budget = max_bytes - 200  # room for `truncated` and `payload_bytes`
    kept: dict[str, Any] = {}
    left_out: list[str] = []
    for key, value in sorted(payload.items(), key=lambda item: _size(item[1])):
        value_size = _size(value) + len(key) + 6
        if value_size <= budget:
            kept[key] = value
            budget -= value_size
        else:
            left_out.append(key)
    ordered = {key: kept[key] for key in payload if key in kept}
    return {**ordered, "truncated": sorted(left_out), "payload_bytes": size}


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str))
