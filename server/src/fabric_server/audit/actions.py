"""Audit actions, declared on each mutating route.

A route that changes something names what its audit row records, right above its handler:

    @router.post("/v1/api-keys/{key_id}/rotate", ...)
    @audited("api_key.rotate")
    async def rotate_api_key(...): ...

Actions read `<resource>.<verb>` (`auth.<step>` for account routes). A test walks the route
table and fails for a mutating route that declares none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
_ATTRIBUTE = "__fabric_audit_action__"
_QUIET = "__fabric_audit_quiet__"


def audited(action: str, *, row: bool = True) -> Callable[[F], F]:
    """Declare the audit action of the route handler below. `row=False`: a machine's
    high-frequency protocol call (a code worker's poll, heartbeat, progress) whose record is
    the event log, not an audit row per call."""
    if "." not in action:
        raise ValueError(f"an audit action reads resource.verb, not {action!r}")

    def declare(handler: F) -> F:
        setattr(handler, _ATTRIBUTE, action)
        if not row:
            setattr(handler, _QUIET, True)
        return handler

    return declare


def writes_no_row(handler: Any) -> bool:
    """Whether the route handler was declared `audited(..., row=False)`."""
    return bool(getattr(handler, _QUIET, False))


def declared_action(handler: Any) -> str | None:
    """The action declared on a route handler, if any."""
    action = getattr(handler, _ATTRIBUTE, None)
    return action if isinstance(action, str) else None
