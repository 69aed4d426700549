"""Response shapes for the organizations domain, built from rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fabric_server.access.models import Membership
from fabric_server.auth.models import User
from fabric_server.orgs.invitations import status_of
from fabric_server.orgs.models import Invitation, Organization, Team
from fabric_server.orgs.schemas import (
    InvitationOut,
    MembershipOut,
    MyOrganization,
    MyTeam,
    OrganizationOut,
    OrganizationWithRole,
    TeamOut,
)


def organization_out(org: Organization) -> OrganizationOut:
    return OrganizationOut.model_validate(org)


def organization_with_role(org: Organization, role: str) -> OrganizationWithRole:
    return OrganizationWithRole.model_validate({**organization_out(org).model_dump(), "role": role})


def my_organization_out(org: Organization, role: str) -> MyOrganization:
    return MyOrganization.model_validate(
        {"id": org.id, "slug": org.slug, "name": org.name, "archived": org.archived, "role": role}
    )


def membership_fields(membership: Membership, user: User | None) -> dict[str, Any]:
    return {
        "id": membership.id,
        "principal_id": membership.principal_id,
        "organization_id": membership.organization_id,
        "team_id": None,
        "role": membership.role,
        "active": membership.active,
        "created_at": membership.created_at,
        "email": user.email if user else None,
        "display_name": user.display_name if user else None,
    }


def membership_out(membership: Membership, user: User | None) -> MembershipOut:
    return MembershipOut.model_validate(membership_fields(membership, user))


def team_out(team: Team) -> TeamOut:
    return TeamOut.model_validate(team)


def my_team_out(team: Team, role: str) -> MyTeam:
    fields = TeamOut.model_validate(team).model_dump()
    return MyTeam.model_validate({**fields, "role": role})


def invitation_out(invitation: Invitation, now: dt.datetime) -> InvitationOut:
    return InvitationOut.model_validate(
        {
            "id": invitation.id,
            "organization_id": invitation.organization_id,
            "team_id": invitation.team_id,
            "email": invitation.email,
            "role": invitation.role,
            "status": status_of(invitation, now),
            "expires_at": invitation.expires_at,
            "created_at": invitation.created_at,
            "accepted_at": invitation.accepted_at,
            "revoked_at": invitation.revoked_at,
        }
    )
