"""Request and response models for organizations, teams, members and invitations."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from fabric_server.auth.schemas import NewEmail
from fabric_server.bodies import RequestBody

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$"
Slug = Annotated[
    str,
    Field(
        pattern=SLUG_PATTERN,
        min_length=2,
        max_length=64,
        description="2 to 64 characters: lower-case letters, digits and inner hyphens",
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Role = Literal["owner", "admin", "member", "viewer"]
InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]


class OrganizationCreate(BaseModel):
    slug: Slug
    name: Name


class OrganizationUpdate(BaseModel):
    """Fields to change; those left out (or null) stay as they are."""

    name: Name | None = None
    slug: Slug | None = None


class MemberUpdate(BaseModel):
    role: Role


class OrganizationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    slug: str
    name: str
    archived: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class OrganizationWithRole(OrganizationOut):
    role: Role


class MyOrganization(BaseModel):
    id: str
    slug: str
    name: str
    archived: bool
    role: Role


class MembershipOut(BaseModel):
    id: str
    principal_id: str
    organization_id: str
    team_id: str | None
    role: Role
    active: bool
    created_at: dt.datetime
    email: str | None
    display_name: str | None


class TeamCreate(BaseModel):
    organization_id: str = Field(max_length=64)
    slug: Slug
    name: Name


class TeamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    organization_id: str
    slug: str
    name: str
    archived: bool
    created_at: dt.datetime


class MyTeam(TeamOut):
    role: Role


class InvitationCreate(BaseModel):
    organization_id: str = Field(max_length=64)
    email: NewEmail
    role: Role = "member"
    team_id: str | None = Field(default=None, max_length=64)


class InvitationOut(BaseModel):
    id: str
    organization_id: str
    team_id: str | None
    email: str
    role: Role
    status: InvitationStatus
    expires_at: dt.datetime
    created_at: dt.datetime
    accepted_at: dt.datetime | None
    revoked_at: dt.datetime | None


class AcceptedInvitation(MembershipOut):
    """What accepting answers: the membership the invitation gave (or the one kept)."""

    invitation_id: str


_LIMIT = "Unfinished (pending or running) at most; 0: no limit; null: the server's default"


class LimitsSet(RequestBody):
    """The limits to change; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    max_active_jobs: int | None = Field(default=None, ge=0, le=10_000_000, description=_LIMIT)
    max_active_runs: int | None = Field(default=None, ge=0, le=10_000_000, description=_LIMIT)


class LimitValues(BaseModel):
    max_active_jobs: int | None
    max_active_runs: int | None


class LimitsOut(BaseModel):
    organization_id: str
    max_active_jobs: int = Field(description="In effect now (0: no limit)")
    max_active_runs: int = Field(description="In effect now (0: no limit)")
    overrides: LimitValues = Field(description="The organization's own (null: the default)")
    defaults: LimitValues = Field(description="The server's (FABRIC_ORG_MAX_ACTIVE_*)")
    updated_at: str | None
    updated_by: str | None
