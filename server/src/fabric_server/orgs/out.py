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
    TeamOut,
)


def organization_out(org: Organization) -> dict[str, Any]:
    return OrganizationOut.model_validate(org).model_dump(mode="json")


def my_organization_out(org: Organization, role: str) -> dict[str, Any]:
    return MyOrganization.model_validate(
        {"id": org.id, "slug": org.slug, "name": org.name, "archived": org.archived, "role": role}
    ).model_dump(mode="json")


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


def membership_out(membership: Membership, user: User | None) -> dict[str, Any]:
    return MembershipOut.model_validate(membership_fields(membership, user)).model_dump(mode="json")


def team_out(team: Team) -> dict[str, Any]:
    return TeamOut.model_validate(team).model_dump(mode="json")


def my_team_out(team: Team, role: str) -> dict[str, Any]:
    fields = TeamOut.model_validate(team).model_dump()
    return MyTeam.model_validate({**fields, "role": role}).model_dump(mode="json")


def invitation_out(invitation: Invitation, now: dt.datetime) -> dict[str, Any]:
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
    ).model_dump(mode="json")
