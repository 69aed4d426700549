"""Reading the audit log: an organization's (admins) and your own."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.api.pagination import CursorQuery
from fabric_server.audit import repository
from fabric_server.audit.models import AuditLog
from fabric_server.audit.repository import AuditFilter
from fabric_server.paging import MAX_LIMIT, encode_cursor, page_request

router = APIRouter(tags=["audit"], responses=ERROR_RESPONSES)


class AuditLogOut(BaseModel):
    id: str
    organization_id: str | None
    actor_type: str
    actor_id: str | None
    api_key_id: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    method: str
    path: str
    ip: str | None
    user_agent: str | None
    request_id: str | None
    created_at: dt.datetime


class AuditPage(BaseModel):
    items: list[AuditLogOut]
    next_cursor: str | None


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Text = Annotated[str | None, Query(max_length=200)]


@router.get(
    "/v1/organizations/{org_id}/audit-logs",
    response_model=Envelope[AuditPage],
    summary="An organization's audit log, newest first (admins)",
)
async def get_org_audit_logs(
    org_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Limit = 50,
    cursor: CursorQuery = None,
    action: Text = None,
    actor_id: Text = None,
    resource_type: Text = None,
    resource_id: Text = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> JSONResponse:
    page = page_request(limit, cursor)
    where = AuditFilter(
        organization_ids=[org_id],
        action=action,
        actor_id=actor_id,
        resource_type=resource_type,
        resource_id=resource_id,
        since=as_utc(since),
        until=as_utc(until),
    )
    async with services.db.read() as session:
        await services.access.authorize(session, principal, org_id, "audit.read")
        rows = await repository.page(session, where, limit=limit + 1, after_id=page.after_id)
    return ok(request, _page(rows, limit))


@router.get(
    "/v1/audit-logs",
    response_model=Envelope[AuditPage],
    summary="Your own actions, newest first",
)
async def get_audit_logs(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Limit = 50,
    cursor: CursorQuery = None,
    action: Text = None,
) -> JSONResponse:
    page = page_request(limit, cursor)
    # An API key sees its creator's actions in the key's own organization only.
    bound = [principal.organization_id] if principal.organization_id else None
    where = AuditFilter(actor_id=principal.id, action=action, organization_ids=bound)
    async with services.db.read() as session:
        rows = await repository.page(session, where, limit=limit + 1, after_id=page.after_id)
    return ok(request, _page(rows, limit))


def as_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """A filter time without a zone is read as UTC (the log's own zone)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


def _page(rows: list[AuditLog], limit: int) -> AuditPage:
    more = len(rows) > limit
    rows = rows[:limit]
    items = [AuditLogOut.model_validate(row, from_attributes=True) for row in rows]
    next_cursor = encode_cursor(rows[-1].id) if more and rows else None
    return AuditPage(items=items, next_cursor=next_cursor)
