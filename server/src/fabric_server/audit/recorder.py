"""Adds the audit row of a mutating request to the transaction that commits its change."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.audit.actions import declared_action
from fabric_server.audit.context import wants_row
from fabric_server.audit.models import AuditLog
from fabric_server.db.base import table_of
from fabric_server.db.types import new_id, utcnow
from fabric_server.events.models import Event
from fabric_server.request_context import RequestAudit, current_request

_ORG_PARAMS = ("org_id", "organization_id")
_ID_PARAM = re.compile(r"(^id$|_id$|^name$|^key$|_key$)")


def action_of(route: Any) -> str:
    """The audit action the route declares (`@audited(...)`); a test makes sure every
    mutating route does, so the handler's name is only a last resort."""
    return declared_action(getattr(route, "endpoint", None)) or str(getattr(route, "name", ""))


async def add_audit_row(session: AsyncSession) -> None:
    """Before-commit hook: record the request's audit row once, in the same transaction."""
    audit = current_request.get()
    if audit is None or not wants_row(audit):
        return
    audit.recorded = True
    session.add(_row(audit, session))


def _row(audit: RequestAudit, session: AsyncSession) -> AuditLog:
    changed = _first_changed(session)
    principal = _principal(audit)
    values = _values(
        audit,
        resource_id=str(getattr(changed, "id", "") or "") or None if changed is not None else None,
        organization_id=_organization({}, changed, principal) or _event_organization(session),
    )
    return AuditLog(**values)


def audit_values(*, resource_id: str | None, organization_id: str | None) -> dict[str, Any] | None:
    """The current request's audit row (column values), for a change committed through the
    group-commit writer, which writes it in the same transaction; None when the request
    records none (not a mutating request, or recorded already)."""
    audit = current_request.get()
    if audit is None or not wants_row(audit):
        return None
    audit.recorded = True
    return {
        "id": new_id(),
        "created_at": utcnow(),
        **_values(audit, resource_id=resource_id, organization_id=organization_id),
    }


_INSERT = insert(table_of(AuditLog))


def insert_audit_row(conn: Connection, values: dict[str, Any]) -> None:
    """Write an audit row made by `audit_values` (group-commit units)."""
    conn.execute(_INSERT, values)


def _principal(audit: RequestAudit) -> Principal | None:
    state: dict[str, Any] = audit.scope.get("state") or {}
    principal: Principal | None = state.get("principal")
    return principal


def _values(
    audit: RequestAudit, *, resource_id: str | None, organization_id: str | None
) -> dict[str, Any]:
    """Who did what, where: the path's ids first (the most specific: `/organizations/{org_id}/
    members/{principal_id}` is about the member), then what the change says."""
    scope = audit.scope
    route = scope["route"]
    principal = _principal(audit)
    params: dict[str, Any] = scope.get("path_params") or {}
    ids = [str(v) for k, v in params.items() if _ID_PARAM.search(k) and k not in _ORG_PARAMS]
    ids += [str(params[k]) for k in _ORG_PARAMS if k in params]
    org_id = next((str(params[k]) for k in _ORG_PARAMS if k in params), None)
    org_id = org_id or organization_id or (principal.organization_id if principal else None)
    headers = dict(scope.get("headers") or [])
    client = scope.get("client")
    action = action_of(route)
    return {
        "organization_id": org_id,
        "actor_type": principal.kind if principal else "anonymous",
        "actor_id": principal.id if principal else None,
        "api_key_id": principal.api_key_id if principal else None,
        "action": action,
        "resource_type": action.split(".", 1)[0] if "." in action else None,
        "resource_id": ids[0] if ids else resource_id,
        "method": audit.method,
        "path": str(getattr(route, "path", scope.get("path", "")))[:500],
        "ip": client[0] if client else None,
        "user_agent": headers.get(b"user-agent", b"").decode("latin-1")[:500] or None,
        "request_id": audit.request_id,
        "details": {},
    }


def _first_changed(session: AsyncSession) -> Any:
    """The first row the request created, else the first it changed or deleted."""
    for key in ("flushed_new", "flushed_touched"):
        for obj in session.info.get(key, []):
            if not isinstance(obj, Event | AuditLog):
                return obj
    return None


def _organization(params: dict[str, Any], changed: Any, principal: Principal | None) -> str | None:
    for key in _ORG_PARAMS:
        if key in params:
            return str(params[key])
    org = getattr(changed, "organization_id", None)
    if org:
        return str(org)
    if changed is not None and type(changed).__name__ == "Organization":
        return str(changed.id)
    audit = current_request.get()
    if audit is not None and audit.organization_id is not None:
        return audit.organization_id  # where the request was authorized
    return principal.organization_id if principal else None


def _event_organization(session: AsyncSession) -> str | None:
    """The organization of the events the transaction writes (bulk SQL changes leave no
    ORM object behind, but their events still name the organization)."""
    for obj in [*session.info.get("flushed_new", []), *session.new]:
        if isinstance(obj, Event) and obj.organization_id:
            return obj.organization_id
    return None
