"""HTTP routes for organizations, their members and teams."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.orgs.out import membership_out, organization_out, team_out
from fabric_server.orgs.schemas import (
    MembershipOut,
    OrganizationCreate,
    OrganizationOut,
    OrganizationWithRole,
    TeamCreate,
    TeamOut,
)

router = APIRouter(tags=["organizations"], responses=ERROR_RESPONSES)


@router.post(
    "/v1/organizations",
    status_code=201,
    response_model=Envelope[OrganizationOut],
    summary="Create an organization (the caller becomes its owner)",
)
async def create_organization(
    body: OrganizationCreate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        org = await services.orgs.create_organization(session, principal, body.slug, body.name)
        data = organization_out(org)
    return ok(request, data, 201)


@router.get(
    "/v1/organizations",
    response_model=Envelope[list[OrganizationWithRole]],
    summary="The caller's organizations (with the caller's role in each)",
)
async def list_organizations(
    request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        rows = await services.identity.organizations(session, principal)
        data = [{**organization_out(org), "role": role} for org, role in rows]
    return ok(request, data)


@router.get(
    "/v1/organizations/{org_id}",
    response_model=Envelope[OrganizationOut],
    summary="Get an organization",
)
async def get_organization(
    org_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        org = await services.orgs.get_organization(session, principal, org_id)
        return ok(request, organization_out(org))


@router.get(
    "/v1/organizations/{org_id}/members",
    response_model=Envelope[list[MembershipOut]],
    summary="Members of an organization",
)
async def list_members(
    org_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        rows = await services.orgs.members(session, principal, org_id)
        return ok(request, [membership_out(m, user) for m, user in rows])


@router.get(
    "/v1/organizations/{org_id}/teams",
    response_model=Envelope[list[TeamOut]],
    summary="Teams of an organization",
)
async def list_teams(
    org_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        teams = await services.orgs.teams(session, principal, org_id)
        return ok(request, [team_out(team) for team in teams])


@router.post(
    "/v1/teams",
    status_code=201,
    response_model=Envelope[TeamOut],
    summary="Create a team (needs team.create; the caller joins it)",
)
async def create_team(
    body: TeamCreate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        team = await services.orgs.create_team(
            session, principal, body.organization_id, body.slug, body.name
        )
        data = team_out(team)
    return ok(request, data, 201)


@router.get("/v1/teams/{team_id}", response_model=Envelope[TeamOut], summary="Get a team")
async def get_team(
    team_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        team = await services.orgs.get_team(session, principal, team_id)
        return ok(request, team_out(team))
