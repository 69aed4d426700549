"""HTTP routes for the caller's identity: `/v1/me`, its organizations, teams, permissions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fabric_server.access.schemas import Me, MyPermission
from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.orgs.out import my_organization_out, my_team_out
from fabric_server.orgs.schemas import MyOrganization, MyTeam

router = APIRouter(prefix="/v1/me", tags=["identity"], responses=ERROR_RESPONSES)


@router.get("", response_model=Envelope[Me], summary="Who the caller is")
async def get_me(request: Request, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    async with services.db.read() as session:
        me = await services.identity.me(session, principal)
    return ok(request, me)


@router.get(
    "/organizations",
    response_model=Envelope[list[MyOrganization]],
    summary="The caller's organizations, with the caller's role",
)
async def my_organizations(
    request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        rows = await services.identity.organizations(session, principal)
        return ok(request, [my_organization_out(org, role) for org, role in rows])


@router.get(
    "/teams",
    response_model=Envelope[list[MyTeam]],
    summary="The teams the caller belongs to, with the caller's team role",
)
async def my_teams(
    request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        rows = await services.identity.teams(session, principal)
        return ok(request, [my_team_out(team, role) for team, role in rows])


@router.get(
    "/permissions",
    response_model=Envelope[list[MyPermission]],
    summary="The caller's role and allowed actions in each organization and team",
)
async def my_permissions(
    request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        rows = await services.identity.permissions(session, principal)
    return ok(request, rows)
