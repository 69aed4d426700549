"""Which events an endpoint receives.

* `event_filter`: empty means every event; otherwise an event matches an exact kind
  (`job.completed`), a prefix wildcard (`workflow.run.*` matches `workflow.run.completed` and
  anything else under `workflow.run.`), or `*`.
* `resource_filter`: every key must equal the event's field of that name (`organization_id`,
  `job_id`, `run_id`, `node_key`), or else the top-level payload field of that name.
* Only events written after the subscription started (`start_seq`) are delivered, and never
  the platform's internal `_fabric_*` node events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fabric_server.events.models import Event
from fabric_server.webhooks.models import Webhook

_EVENT_FIELDS = ("organization_id", "job_id", "run_id", "node_key")


def normalize_patterns(patterns: Sequence[str]) -> list[str]:
    """The patterns without duplicates, in the order given."""
    return list(dict.fromkeys(patterns))


def kind_matches(patterns: Sequence[str], kind: str) -> bool:
    if not patterns:
        return True
    for pattern in patterns:
        if pattern in ("*", kind):
            return True
        if pattern.endswith(".*") and kind.startswith(pattern[:-1]):
            return True
    return False


def resource_matches(wanted: Mapping[str, str] | None, event: Event) -> bool:
    if not wanted:
        return True
    for key, expected in wanted.items():
        value: Any = getattr(event, key) if key in _EVENT_FIELDS else event.payload.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int):
            return False
        if str(value) != expected:
            return False
    return True


def matches(webhook: Webhook, event: Event) -> bool:
    if event.seq <= webhook.start_seq or event.organization_id != webhook.organization_id:
        return False
    if event.node_key is not None and event.node_key.startswith("_fabric_"):
        return False
    return kind_matches(webhook.event_filter, event.kind) and resource_matches(
        webhook.resource_filter, event
    )
