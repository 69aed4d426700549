"""HTTP routes for invitations: invite, list, revoke, and accept (signed in, or by link)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ErrorEnvelope, ok
from fabric_server.audit.actions import audited
from fabric_server.errors import DomainError
from fabric_server.orgs.invitations import Accepted, EmailNotVerified
from fabric_server.orgs.out import invitation_out, membership_fields
from fabric_server.orgs.schemas import AcceptedInvitation, InvitationCreate, InvitationOut

router = APIRouter(prefix="/v1/invitations", tags=["invitations"], responses=ERROR_RESPONSES)

GONE: dict[int | str, dict[str, Any]] = {
    410: {"model": ErrorEnvelope, "description": "Revoked or expired invitation"}
}


@router.post(
    "",
    status_code=201,
    response_model=Envelope[InvitationOut],
    summary="Invite an email address to an organization (mails a link; admin or higher)",
)
@audited("invitation.create")
async def create_invitation(
    body: InvitationCreate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        invitation = await services.invitations.create(
            session, principal, body.organization_id, body.email, body.role, body.team_id
        )
        data = invitation_out(invitation, services.invitations.clock())
    return ok(request, data, 201)


@router.get(
    "",
    response_model=Envelope[list[InvitationOut]],
    summary="Invitations of an organization, newest first",
)
async def list_invitations(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    organization_id: Annotated[str, Query(max_length=64)],
) -> JSONResponse:
    async with services.db.read() as session:
        rows = await services.invitations.list(session, principal, organization_id)
        now = services.invitations.clock()
        return ok(request, [invitation_out(row, now) for row in rows])


@router.get("/{invitation_id}", response_model=Envelope[InvitationOut], summary="Get an invitation")
async def get_invitation(
    invitation_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        invitation = await services.invitations.get(session, principal, invitation_id)
        return ok(request, invitation_out(invitation, services.invitations.clock()))


@router.post(
    "/{invitation_id}/revoke",
    response_model=Envelope[InvitationOut],
    summary="Revoke a pending invitation (accepted ones are left as they are)",
)
@audited("invitation.revoke")
async def revoke_invitation(
    invitation_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        invitation = await services.invitations.revoke(session, principal, invitation_id)
        data = invitation_out(invitation, services.invitations.clock())
    return ok(request, data)


@router.post(
    "/{invitation_id}/accept",
    response_model=Envelope[AcceptedInvitation],
    responses=GONE,
    summary="Accept an invitation as the signed-in user its email was sent to",
)
@audited("invitation.accept")
async def accept_invitation(
    invitation_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        accepted = await services.invitations.accept_signed_in(session, principal, invitation_id)
        data = _accepted(accepted)
    return ok(request, data)


@router.get(
    "/{invitation_id}/accept",
    response_model=Envelope[AcceptedInvitation],
    responses={
        **GONE,
        302: {"description": "Accepted (or refused): off to FABRIC_INVITE_REDIRECT_URL"},
    },
    summary="Accept an invitation with the token from its mail (the mailed link)",
)
async def accept_invitation_link(
    invitation_id: str,
    request: Request,
    services: ServicesDep,
    token: Annotated[str, Query(min_length=1, max_length=4096)],
) -> Response:
    redirect = services.settings.invite_redirect_url
    try:
        try:
            async with services.db.write() as session:
                accepted = await services.invitations.accept_with_token(
                    session, invitation_id, token
                )
                data = _accepted(accepted)
        except EmailNotVerified as exc:
            # The account's own verification link is what proves the address: mail it.
            async with services.db.write() as session:
                await services.auth.recovery.resend_verification(session, exc.email)
            raise
    except DomainError as exc:
        if redirect is None:
            raise
        return RedirectResponse(_with_query(redirect, {"error": exc.code}), status_code=302)
    if redirect is None:
        return ok(request, data)
    query = {
        "invitation_id": accepted.invitation.id,
        "organization_id": accepted.invitation.organization_id,
        "status": "accepted",
    }
    return RedirectResponse(_with_query(redirect, query), status_code=302)


def _accepted(accepted: Accepted) -> AcceptedInvitation:
    fields = {
        **membership_fields(accepted.membership, accepted.user),
        "invitation_id": accepted.invitation.id,
    }
    return AcceptedInvitation.model_validate(fields)


def _with_query(url: str, params: dict[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
