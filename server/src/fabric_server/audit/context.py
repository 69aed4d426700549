"""Which requests get an audit row.

The request middleware opens a `RequestAudit` for every HTTP request (`request_context`);
the write transaction asks `wants_row`, just before committing, whether to add the audit
row. Work that is not a request (workers, schedulers) has no `RequestAudit` and is not
audited here: its record is the event log.
"""

from __future__ import annotations

import asyncio

from fabric_server.audit.actions import writes_no_row
from fabric_server.request_context import RequestAudit

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def wants_row(audit: RequestAudit) -> bool:
    """True for the first commit of a mutating request, in the request's own task."""
    return (
        not audit.recorded
        and audit.method in MUTATING_METHODS
        and audit.task is asyncio.current_task()
        and audit.scope.get("route") is not None
        and not writes_no_row(getattr(audit.scope["route"], "endpoint", None))
    )
