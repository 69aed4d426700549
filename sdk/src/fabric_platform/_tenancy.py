"""Tenancy: organizations, members, teams, invitations, identity, and organization secrets.

(Permission checks, grants and API keys are in `_access`.)"""

from __future__ import annotations

from typing import Any, Optional, cast

from ._base import encode_path, query
from ._core import AsyncClientCore, SyncClientCore
from .types import (
    Invitation,
    Me,
    Membership,
    MyOrganization,
    MyPermission,
    MyTeam,
    Organization,
    OrgSecret,
    Team,
)

ORGS_PATH = "/v1/organizations"
INVITATIONS_PATH = "/v1/invitations"


def _org_path(template: str, org_id: str, *more: str) -> str:
    return encode_path(ORGS_PATH + template, org_id, *more)


def _update_body(name: Optional[str], slug: Optional[str]) -> dict[str, Any]:
    fields = {"name": name, "slug": slug}
    return {field: value for field, value in fields.items() if value is not None}


def _member_path(org_id: str, principal_id: str) -> str:
    return _org_path("/{}/members/{}", org_id, principal_id)


def _invitation_body(org_id: str, email: str, role: str, team_id: Optional[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"organization_id": org_id, "email": email, "role": role}
    if team_id is not None:
        body["team_id"] = team_id
    return body


def _names(secrets: Any) -> list[str]:
    return [s["name"] for s in secrets or [] if isinstance(s, dict) and "name" in s]


class TenancyMethods(SyncClientCore):
    # --- organizations and teams ---------------------------------------------------------

    def create_organization(self, slug: str, name: str) -> Organization:
        """Create an organization; the caller becomes its owner. `FabricConflictError` when
        the slug (2-64 characters of ``a-z``, ``0-9`` and ``-``) is taken."""
        body = {"slug": slug, "name": name}
        return cast(Organization, self._request("POST", ORGS_PATH, body=body))

    def list_organizations(self) -> list[Organization]:
        """The caller's organizations, each with the caller's ``role``."""
        return cast("list[Organization]", self._request("GET", ORGS_PATH))

    def get_organization(self, org_id: str) -> Organization:
        """The organization ``org_id``; `FabricNotFoundError` unless the caller belongs to it."""
        return cast(Organization, self._request("GET", _org_path("/{}", org_id)))

    def update_organization(
        self, org_id: str, *, name: Optional[str] = None, slug: Optional[str] = None
    ) -> Organization:
        """Rename the organization and/or change its slug (admins and owners); what is left
        out stays. `FabricConflictError` when the slug is taken."""
        path = _org_path("/{}", org_id)
        return cast(Organization, self._request("PATCH", path, body=_update_body(name, slug)))

    def archive_organization(self, org_id: str) -> Organization:
        """Archive the organization (owners only): it stays readable, but every change in it
        raises `FabricConflictError` with code ``organization_archived`` until unarchived."""
        return cast(Organization, self._request("POST", _org_path("/{}/archive", org_id)))

    def unarchive_organization(self, org_id: str) -> Organization:
        """Make an archived organization writable again (owners only)."""
        return cast(Organization, self._request("POST", _org_path("/{}/unarchive", org_id)))

    def list_org_members(self, org_id: str) -> list[Membership]:
        """The memberships of the organization, with each member's email and name."""
        return cast("list[Membership]", self._request("GET", _org_path("/{}/members", org_id)))

    def update_org_member(self, org_id: str, principal_id: str, role: str) -> Membership:
        """Give a member another role (admins and owners; only owners grant or take
        ``owner``). Demoting the last owner raises `FabricConflictError` (``last_owner``)."""
        body = {"role": role}
        path = _member_path(org_id, principal_id)
        return cast(Membership, self._request("PATCH", path, body=body))

    def remove_org_member(self, org_id: str, principal_id: str) -> None:
        """Remove a member — or leave, with your own id. Their team places and grants in the
        organization go too, and the API keys they made for it are disabled. The last owner
        cannot be removed (`FabricConflictError`, ``last_owner``)."""
        self._request("DELETE", _member_path(org_id, principal_id))

    def create_team(self, org_id: str, slug: str, name: str) -> Team:
        """Create a team in the organization (needs ``team.create``); the caller joins it."""
        body = {"organization_id": org_id, "slug": slug, "name": name}
        return cast(Team, self._request("POST", "/v1/teams", body=body))

    def get_team(self, team_id: str) -> Team:
        """The team ``team_id``; `FabricNotFoundError` unless the caller is in its
        organization."""
        return cast(Team, self._request("GET", encode_path("/v1/teams/{}", team_id)))

    def list_org_teams(self, org_id: str) -> list[Team]:
        """The teams of the organization."""
        return cast("list[Team]", self._request("GET", _org_path("/{}/teams", org_id)))

    # --- invitations ---------------------------------------------------------------------

    def create_invitation(
        self, org_id: str, email: str, role: str = "member", *, team_id: Optional[str] = None
    ) -> Invitation:
        """Invite ``email`` to the organization with ``role`` (and into ``team_id``); the
        server mails them a link. Needs admin or higher."""
        body = _invitation_body(org_id, email, role, team_id)
        return cast(Invitation, self._request("POST", INVITATIONS_PATH, body=body))

    def list_invitations(self, org_id: str) -> list[Invitation]:
        """The organization's invitations, newest first, each with its ``status``."""
        params = query(organization_id=org_id)
        return cast("list[Invitation]", self._request("GET", INVITATIONS_PATH, params=params))

    def get_invitation(self, invitation_id: str) -> Invitation:
        """The invitation ``invitation_id`` (for those who may invite in its organization)."""
        path = encode_path(INVITATIONS_PATH + "/{}", invitation_id)
        return cast(Invitation, self._request("GET", path))

    def accept_invitation(self, invitation_id: str) -> Membership:
        """Accept an invitation as the signed-in user it was sent to (verified email);
        returns the membership. Accepting twice raises `FabricConflictError`."""
        path = encode_path("/v1/invitations/{}/accept", invitation_id)
        return cast(Membership, self._request("POST", path))

    def revoke_invitation(self, invitation_id: str) -> Invitation:
        """Withdraw a pending invitation; returns it (an accepted one is left unchanged)."""
        path = encode_path("/v1/invitations/{}/revoke", invitation_id)
        return cast(Invitation, self._request("POST", path))

    # --- identity ------------------------------------------------------------------------

    def get_me(self) -> Me:
        """Who the server takes the caller for."""
        return cast(Me, self._request("GET", "/v1/me"))

    def get_my_organizations(self) -> list[MyOrganization]:
        """The caller's organizations with the caller's role in each."""
        return cast("list[MyOrganization]", self._request("GET", "/v1/me/organizations"))

    def get_my_teams(self) -> list[MyTeam]:
        """The teams the caller belongs to."""
        return cast("list[MyTeam]", self._request("GET", "/v1/me/teams"))

    def get_my_permissions(self) -> list[MyPermission]:
        """The caller's role and allowed actions in each organization (and team)."""
        return cast("list[MyPermission]", self._request("GET", "/v1/me/permissions"))

    # --- secrets (of the client's organization) ------------------------------------------

    def set_secret(self, name: str, value: str) -> OrgSecret:
        """Store a secret (e.g. ``OPENAI_API_KEY``) in the client's organization, replacing
        any previous value. The value is encrypted at rest and never returned.

        The organization is the client's `organization_id`; with an API key and none given,
        the key's organization (asked from the server once)."""
        path = _org_path("/{}/secrets", self._path_organization_id())
        body = {"name": name, "value": value}
        return cast(OrgSecret, self._request("POST", path, body=body))

    def list_secrets(self) -> list[str]:
        """The names of the organization's secrets."""
        path = _org_path("/{}/secrets", self._path_organization_id())
        return _names(self._request("GET", path))

    def delete_secret(self, name: str) -> None:
        """Delete a secret; `FabricNotFoundError` if there is none by that name."""
        path = _org_path("/{}/secrets/{}", self._path_organization_id(), name)
        self._request("DELETE", path)


class AsyncTenancyMethods(AsyncClientCore):
    async def create_organization(self, slug: str, name: str) -> Organization:
        """Create an organization; the caller becomes its owner."""
        body = {"slug": slug, "name": name}
        return cast(Organization, await self._request("POST", ORGS_PATH, body=body))

    async def list_organizations(self) -> list[Organization]:
        """The caller's organizations, each with the caller's ``role``."""
        return cast("list[Organization]", await self._request("GET", ORGS_PATH))

    async def get_organization(self, org_id: str) -> Organization:
        """The organization ``org_id``."""
        return cast(Organization, await self._request("GET", _org_path("/{}", org_id)))

    async def update_organization(
        self, org_id: str, *, name: Optional[str] = None, slug: Optional[str] = None
    ) -> Organization:
        """Rename the organization and/or change its slug; see `FabricClient`."""
        path = _org_path("/{}", org_id)
        body = _update_body(name, slug)
        return cast(Organization, await self._request("PATCH", path, body=body))

    async def archive_organization(self, org_id: str) -> Organization:
        """Archive the organization (owners only): read-only until unarchived."""
        path = _org_path("/{}/archive", org_id)
        return cast(Organization, await self._request("POST", path))

    async def unarchive_organization(self, org_id: str) -> Organization:
        """Make an archived organization writable again (owners only)."""
        path = _org_path("/{}/unarchive", org_id)
        return cast(Organization, await self._request("POST", path))

    async def list_org_members(self, org_id: str) -> list[Membership]:
        """The memberships of the organization."""
        path = _org_path("/{}/members", org_id)
        return cast("list[Membership]", await self._request("GET", path))

    async def update_org_member(self, org_id: str, principal_id: str, role: str) -> Membership:
        """Give a member another role; see `FabricClient`."""
        body = {"role": role}
        path = _member_path(org_id, principal_id)
        return cast(Membership, await self._request("PATCH", path, body=body))

    async def remove_org_member(self, org_id: str, principal_id: str) -> None:
        """Remove a member (or leave, with your own id); see `FabricClient`."""
        await self._request("DELETE", _member_path(org_id, principal_id))

    async def create_team(self, org_id: str, slug: str, name: str) -> Team:
        """Create a team in the organization (needs ``team.create``)."""
        body = {"organization_id": org_id, "slug": slug, "name": name}
        return cast(Team, await self._request("POST", "/v1/teams", body=body))

    async def get_team(self, team_id: str) -> Team:
        """The team ``team_id``."""
        return cast(Team, await self._request("GET", encode_path("/v1/teams/{}", team_id)))

    async def list_org_teams(self, org_id: str) -> list[Team]:
        """The teams of the organization."""
        return cast("list[Team]", await self._request("GET", _org_path("/{}/teams", org_id)))

    async def create_invitation(
        self, org_id: str, email: str, role: str = "member", *, team_id: Optional[str] = None
    ) -> Invitation:
        """Invite ``email`` to the organization with ``role``; the server mails a link."""
        body = _invitation_body(org_id, email, role, team_id)
        return cast(Invitation, await self._request("POST", INVITATIONS_PATH, body=body))

    async def list_invitations(self, org_id: str) -> list[Invitation]:
        """The organization's invitations, newest first, each with its ``status``."""
        params = query(organization_id=org_id)
        invitations = await self._request("GET", INVITATIONS_PATH, params=params)
        return cast("list[Invitation]", invitations)

    async def get_invitation(self, invitation_id: str) -> Invitation:
        """The invitation ``invitation_id``."""
        path = encode_path(INVITATIONS_PATH + "/{}", invitation_id)
        return cast(Invitation, await self._request("GET", path))

    async def accept_invitation(self, invitation_id: str) -> Membership:
        """Accept an invitation as the signed-in user it was sent to."""
        path = encode_path("/v1/invitations/{}/accept", invitation_id)
        return cast(Membership, await self._request("POST", path))

    async def revoke_invitation(self, invitation_id: str) -> Invitation:
        """Withdraw a pending invitation."""
        path = encode_path("/v1/invitations/{}/revoke", invitation_id)
        return cast(Invitation, await self._request("POST", path))

    async def get_me(self) -> Me:
        """Who the server takes the caller for."""
        return cast(Me, await self._request("GET", "/v1/me"))

    async def get_my_organizations(self) -> list[MyOrganization]:
        """The caller's organizations with the caller's role in each."""
        return cast("list[MyOrganization]", await self._request("GET", "/v1/me/organizations"))

    async def get_my_teams(self) -> list[MyTeam]:
        """The teams the caller belongs to."""
        return cast("list[MyTeam]", await self._request("GET", "/v1/me/teams"))

    async def get_my_permissions(self) -> list[MyPermission]:
        """The caller's role and allowed actions in each organization (and team)."""
        return cast("list[MyPermission]", await self._request("GET", "/v1/me/permissions"))

    async def set_secret(self, name: str, value: str) -> OrgSecret:
        """Store a secret in the client's organization, replacing any previous value."""
        path = _org_path("/{}/secrets", await self._path_organization_id())
        body = {"name": name, "value": value}
        return cast(OrgSecret, await self._request("POST", path, body=body))

    async def list_secrets(self) -> list[str]:
        """The names of the organization's secrets."""
        path = _org_path("/{}/secrets", await self._path_organization_id())
        return _names(await self._request("GET", path))

    async def delete_secret(self, name: str) -> None:
        """Delete a secret; `FabricNotFoundError` if there is none by that name."""
        path = _org_path("/{}/secrets/{}", await self._path_organization_id(), name)
        await self._request("DELETE", path)
