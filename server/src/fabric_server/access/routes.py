"""HTTP routes for authorization checks and explicit permission grants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.models import PermissionGrant
from fabric_server.access.principal import Principal
from fabric_server.access.schemas import AuthzBatch, AuthzCheck, AuthzResult, GrantCreate, GrantOut
from fabric_server.access.service import Access, Resource
from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.audit.actions import audited

router = APIRouter(tags=["access"], responses=ERROR_RESPONSES)


@router.post(
    "/v1/authz/check",
    response_model=Envelope[AuthzResult],
    summary="May the caller do this action (on this resource)? Never reveals resources",
)
@audited("authz.check")
async def check(
    body: AuthzCheck, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        data = await _check(services.access, session, principal, body)
    return ok(request, data)


@router.post(
    "/v1/authz/check-batch",
    response_model=Envelope[list[AuthzResult]],
    summary="Several checks at once; one result per check, in order",
)
@audited("authz.check_batch")
async def check_batch(
    body: AuthzBatch, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        data = [await _check(services.access, session, principal, c) for c in body.checks]
    return ok(request, data)


async def _check(
    access: Access, session: AsyncSession, principal: Principal, body: AuthzCheck
) -> AuthzResult:
    resource = Resource(body.resource_type, body.resource_id) if body.resource_type else None
    decision = await access.check(session, principal, body.action, resource, body.organization_id)
    # What the caller cannot see stays unnamed: only the organization it asked about is echoed.
    visible = decision.reason != "not_found"
    return AuthzResult(
        action=body.action,
        resource_type=body.resource_type,
        resource_id=body.resource_id,
        organization_id=decision.organization_id if visible else body.organization_id,
        allowed=decision.allowed,
        reason=decision.reason,
        role=decision.role,
    )


@router.post(
    "/v1/permissions",
    status_code=201,
    response_model=Envelope[GrantOut],
    summary="Grant (allow or deny) an action to a principal (needs permission.manage)",
)
@audited("grant.create")
async def create_grant(
    body: GrantCreate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        grant = await services.grants.create(session, principal, body)
        data = grant_out(grant)
    return ok(request, data, 201)


@router.get(
    "/v1/permissions",
    response_model=Envelope[list[GrantOut]],
    summary="Permission grants of an organization",
)
async def list_grants(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    organization_id: Annotated[str, Query(max_length=64)],
    principal_id: Annotated[str | None, Query(max_length=36)] = None,
) -> JSONResponse:
    async with services.db.read() as session:
        grants = await services.grants.list(session, principal, organization_id, principal_id)
        return ok(request, [grant_out(g) for g in grants])


@router.delete(
    "/v1/permissions/{grant_id}",
    response_model=Envelope[None],
    summary="Remove a permission grant",
)
@audited("grant.delete")
async def delete_grant(
    grant_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        await services.grants.delete(session, principal, grant_id)
    return ok(request, None)


def grant_out(grant: PermissionGrant) -> GrantOut:
    fields = {name: getattr(grant, name) for name in GrantOut.model_fields}
    return GrantOut.model_validate(fields)
