"""The HTTP request the current task works for, carried in a context variable.

The request middleware opens a `RequestAudit` for every HTTP request. Authorization notes
in it the organization the request acts in (`note_organization`); the audit recorder adds
the request's audit row from it just before commit, and the server log names that
organization. Work that is not a request (workers, schedulers) has none.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Scope


@dataclass
class RequestAudit:
    scope: Scope
    request_id: str
    task: asyncio.Task[Any] | None = field(default_factory=asyncio.current_task)
    recorded: bool = False
    # The first organization the request was authorized in: where a change that carries no
    # organization of its own (a gallery item, a bulk update) happened.
    organization_id: str | None = None

    @property
    def method(self) -> str:
        return str(self.scope.get("method", ""))


current_request: contextvars.ContextVar[RequestAudit | None] = contextvars.ContextVar(
    "fabric_request_audit", default=None
)


def note_organization(org_id: str) -> None:
    """Remember that the current request was authorized in `org_id` (the first one wins)."""
    audit = current_request.get()
    if audit is not None and audit.organization_id is None:
        audit.organization_id = org_id


def continue_in_this_task(audit: RequestAudit | None) -> contextvars.Token[RequestAudit | None]:
    """Make `audit` the current request's, in the current task: for work a response body
    does after the handler returned (a streamed answer), which is still that request's."""
    if audit is not None:
        audit.task = asyncio.current_task()
    return current_request.set(audit)
