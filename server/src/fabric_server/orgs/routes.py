"""HTTP routes for organizations, their members and teams."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.audit.actions import audited
from fabric_server.orgs.out import (
    membership_out,
    organization_out,
    organization_with_role,
    team_out,
)
from fabric_server.orgs.schemas import (
    MembershipOut,
    MemberUpdate,
    OrganizationCreate,
    OrganizationOut,
    OrganizationUpdate,
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
@audited("organization.create")
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
        data = [organization_with_role(org, role) for org, role in rows]
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


@router.patch(
    "/v1/organizations/{org_id}",
    response_model=Envelope[OrganizationOut],
    summary="Rename an organization or change its slug (needs organization.update)",
)
@audited("organization.update")
async def update_organization(
    org_id: str,
    body: OrganizationUpdate,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    async with services.db.write() as session:
        org = await services.orgs.update_organization(
            session, principal, org_id, name=body.name, slug=body.slug
        )
        data = organization_out(org)
    return ok(request, data)


@router.post(
    "/v1/organizations/{org_id}/archive",
    response_model=Envelope[OrganizationOut],
    summary="Archive an organization: read-only until unarchived (owners only)",
)
@audited("organization.archive")
async def archive_organization(
    org_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        org = await services.orgs.set_archived(session, principal, org_id, True)
        data = organization_out(org)
    return ok(request, data)


@router.post(
    "/v1/organizations/{org_id}/unarchive",
    response_model=Envelope[OrganizationOut],
    summary="Make an archived organization writable again (owners only)",
)
@audited("organization.unarchive")
async def unarchive_organization(
    org_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        org = await services.orgs.set_archived(session, principal, org_id, False)
        data = organization_out(org)
    return ok(request, data)


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


@router.patch(
    "/v1/organizations/{org_id}/members/{principal_id}",
    response_model=Envelope[MembershipOut],
    summary="Change a member's role (needs member.manage; only owners grant or take owner)",
)
@audited("member.update")
async def update_member(
    org_id: str,
    principal_id: str,
    body: MemberUpdate,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    async with services.db.write() as session:
        membership, user = await services.members.change_role(
            session, principal, org_id, principal_id, body.role
        )
        data = membership_out(membership, user)
    return ok(request, data)


@router.delete(
    "/v1/organizations/{org_id}/members/{principal_id}",
    response_model=Envelope[None],
    summary="Remove a member, or leave (your own id); never the last owner",
)
@audited("member.remove")
async def remove_member(
    org_id: str,
    principal_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    async with services.db.write() as session:
        await services.members.remove(session, principal, org_id, principal_id)
    return ok(request, None)


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
@audited("team.create")
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
