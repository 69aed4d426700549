"""HTTP routes for an organization's limits on unfinished jobs and runs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.audit.actions import audited
from fabric_server.orgs.schemas import LimitsOut, LimitsSet

router = APIRouter(
    prefix="/v1/organizations/{org_id}/limits", tags=["organizations"], responses=ERROR_RESPONSES
)


@router.get(
    "",
    response_model=Envelope[LimitsOut],
    summary="How many jobs and top-level runs the organization may have unfinished at once",
)
async def get_limits(
    org_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        data = await services.limits.view(session, principal, org_id)
    return ok(request, LimitsOut.model_validate(data))


@router.put(
    "",
    response_model=Envelope[LimitsOut],
    summary="Set the organization's own limits (null: the server's default); admins may "
    "lower them, platform administrators raise them",
)
@audited("organization.limits_update")
async def set_limits(
    org_id: str, body: LimitsSet, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    async with services.db.write() as session:
        data = await services.limits.set(session, principal, org_id, changes)
    return ok(request, LimitsOut.model_validate(data))
