"""Authorization: may this principal do this action in this organization (on this resource)?

One mechanism answers every question: the caller's role in the organization (the table in
`access/policy.py`), then explicit grants (deny wins over everything, allow adds actions the
role lacks), then — for API keys — the key's scopes, which can only narrow. Another
organization's data is simply not found: `authorize` raises 404 for an organization the
caller cannot see and 403 for an action it may not take there.

An archived organization is read-only: `authorize` answers 409 `organization_archived` to
any call that would change it (by default, any authorization made inside a write
transaction), except the few that only take access away (see `WhenArchived`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access import repository
from fabric_server.access.models import PermissionGrant
from fabric_server.access.policy import (
    ACTIONS,
    ALL_ACTIONS,
    canonical_action,
    is_known_action,
    role_allows,
)
from fabric_server.access.principal import Principal
from fabric_server.db.database import is_write_transaction
from fabric_server.db.versions import ACCESS, VersionedCache, Versions
from fabric_server.errors import Conflict, Forbidden, NotFound, Unprocessable
from fabric_server.request_context import note_organization
from fabric_server.settings import DEFAULT_ORGANIZATION_ID

# Finds the organization a resource belongs to (None: no such resource).
ResourceResolver = Callable[[AsyncSession, str], Awaitable[str | None]]

# Whether an organization is archived (None: no such organization).
ArchivedFlag = Callable[[AsyncSession, str], Awaitable[bool | None]]

# What an archived organization answers to an authorized call: `refuse_writes` (the default)
# refuses it when made inside a write transaction, `refuse` always (for calls that change
# things outside one, like running a provider), `allow` never (calls that only take access
# away: removing a member, disabling a key, revoking an invitation — and unarchiving).
WhenArchived = Literal["refuse_writes", "refuse", "allow"]


class Owned(Protocol):
    """A row that belongs to one organization."""

    @property
    def organization_id(self) -> str: ...


OwnedT = TypeVar("OwnedT", bound=Owned)


class OrganizationArchived(Conflict):
    code = "organization_archived"

    def __init__(self, org_id: str) -> None:
        super().__init__(
            f"Organization {org_id} is archived and read-only: an owner can unarchive it.",
            details={"organization_id": org_id},
        )


class Grant(Protocol):
    """What authorization reads of an explicit grant."""

    @property
    def action(self) -> str: ...
    @property
    def effect(self) -> str: ...
    @property
    def resource_type(self) -> str | None: ...
    @property
    def resource_id(self) -> str | None: ...
    @property
    def team_id(self) -> str | None: ...


@dataclass(frozen=True)
class GrantRule:
    """A detached copy of a grant row, safe to keep between requests."""

    action: str
    effect: str
    resource_type: str | None
    resource_id: str | None
    team_id: str | None

    @classmethod
    def of(cls, grant: PermissionGrant) -> GrantRule:
        return cls(
            grant.action, grant.effect, grant.resource_type, grant.resource_id, grant.team_id
        )


@dataclass(frozen=True)
class Standing:
    """What the database says about one principal in one organization: its role (None: not
    a member), whether the organization is archived (None: no such organization), its
    grants there."""

    role: str | None
    archived: bool | None
    grants: tuple[GrantRule, ...]


@dataclass(frozen=True)
class Resource:
    """What an action is about; `id` None means "any resource of this type"."""

    type: str
    id: str | None = None


@dataclass(frozen=True)
class Decision:
    """The answer to one authorization question.

    `reason` is one of: `role`, `grant` (allowed); `not_found` (the organization or resource
    is not visible), `unknown_action`, `unknown_resource_type`, `no_organization`,
    `denied_by_grant`, `role_does_not_allow`, `outside_key_scopes` (refused).
    """

    allowed: bool
    reason: str
    role: str | None = None
    organization_id: str | None = None
    archived: bool = False


REFUSALS = {
    "denied_by_grant": "An explicit grant denies {action} here.",
    "role_does_not_allow": "Your role ({role}) does not allow {action}.",
    "outside_key_scopes": "These credentials are not scoped for {action}.",
    "unknown_action": "{action} is not a known action.",
}


class Access:
    """Answers authorization questions; another organization's data is simply not found."""

    def __init__(
        self, *, dev_mode: bool, archived: ArchivedFlag, versions: Versions | None = None
    ) -> None:
        """`archived` reads an organization's archived flag; the organizations domain owns
        that table, and registers its other resources (teams) with `register_resource`,
        as every domain does."""
        self.dev_mode = dev_mode
        self.archived = archived
        # Answers are cached per process, exact thanks to the `access` version counter.
        self._standings: VersionedCache[tuple[str, str], Standing] | None = None
        self._memberships: VersionedCache[str, tuple[str, ...]] | None = None
        if versions is not None:
            self._standings = VersionedCache(versions, ACCESS)
            self._memberships = VersionedCache(versions, ACCESS)
        self.resolvers: dict[str, ResourceResolver] = {"organization": self._organization_of_org}

    @property
    def known_resource_types(self) -> set[str]:
        """Types a check may name: those with a resolver, and every action's resource."""
        return set(self.resolvers) | {action.split(".", 1)[0] for action in ACTIONS}

    def register_resource(self, resource_type: str, resolver: ResourceResolver) -> None:
        """Teach authorization checks a resource type (each domain registers its own)."""
        self.resolvers[resource_type] = resolver

    async def organization_of(
        self, session: AsyncSession, resource_type: str, resource_id: str
    ) -> str | None:
        """The organization a resource belongs to; None when there is no such resource (or
        no resolver for its type)."""
        resolver = self.resolvers.get(resource_type)
        return None if resolver is None else await resolver(session, resource_id)

    async def _organization_of_org(self, session: AsyncSession, org_id: str) -> str | None:
        return org_id if await self.archived(session, org_id) is not None else None

    async def standing(self, session: AsyncSession, principal_id: str, org_id: str) -> Standing:
        """The principal's role, the organization's archived flag and the grants (cached)."""

        async def load() -> Standing:
            role = await repository.member_role(session, org_id, principal_id)
            archived = await self.archived(session, org_id)
            grants = await repository.grants_for(session, principal_id, org_id)
            return Standing(role, archived, tuple(GrantRule.of(g) for g in grants))

        if self._standings is None:
            return await load()
        return await self._standings.get(session, (principal_id, org_id), load)

    async def member_org_ids(self, session: AsyncSession, principal_id: str) -> tuple[str, ...]:
        """The organizations the principal is an active member of (cached)."""

        async def load() -> tuple[str, ...]:
            return tuple(await repository.member_org_ids(session, principal_id))

        if self._memberships is None:
            return await load()
        return await self._memberships.get(session, principal_id, load)

    async def role_in(self, session: AsyncSession, principal: Principal, org_id: str) -> str | None:
        if principal.organization_id is not None and principal.organization_id != org_id:
            return None
        role = (await self.standing(session, principal.id, org_id)).role
        # Dev mode: any asserted principal works in the default organization.
        if (
            role is None
            and self.dev_mode
            and principal.kind == "dev"
            and org_id == DEFAULT_ORGANIZATION_ID
        ):
            return "admin"
        return role

    async def decide(
        self,
        session: AsyncSession,
        principal: Principal,
        org_id: str,
        action: str,
        resource: Resource | None = None,
    ) -> Decision:
        """Whether `principal` may do `action` in `org_id` (on `resource`), and why."""
        role = await self.role_in(session, principal, org_id)
        standing = await self.standing(session, principal.id, org_id)
        if role is None or standing.archived is None:
            return Decision(False, "not_found", None, org_id)
        allowed, reason = evaluate(
            principal, role, standing.grants, canonical_action(action), resource
        )
        return Decision(allowed, reason, role, org_id, standing.archived)

    async def authorize(
        self,
        session: AsyncSession,
        principal: Principal,
        org_id: str,
        action: str,
        resource: Resource | None = None,
        *,
        when_archived: WhenArchived = "refuse_writes",
    ) -> str:
        """Return the caller's role in `org_id`, or raise 404 (invisible) / 403 (not allowed)
        / 409 `organization_archived` (a change in an archived organization)."""
        decision = await self.decide(session, principal, org_id, action, resource)
        if decision.reason == "not_found":
            raise NotFound(f"Organization {org_id} was not found.")
        if not decision.allowed:
            template = REFUSALS.get(decision.reason, "You may not {action} here.")
            raise Forbidden(template.format(action=action, role=decision.role))
        if decision.archived and refuses_when_archived(session, when_archived):
            raise OrganizationArchived(org_id)
        assert decision.role is not None
        note_organization(org_id)  # the audit row's organization, if the change names none
        return decision.role

    async def authorize_found(
        self,
        session: AsyncSession,
        principal: Principal,
        found: OwnedT | None,
        action: str,
        *,
        missing: str,
        resource: Resource | None = None,
        when_archived: WhenArchived = "refuse_writes",
    ) -> tuple[OwnedT, str]:
        """Authorize `action` on `found`, a row loaded by its id: 404 with `missing` when it
        does not exist or belongs to an organization the caller cannot see — the same answer,
        so an id tells nothing about other organizations. Returns the row and the caller's
        role there."""
        if found is None:
            raise NotFound(missing)
        try:
            role = await self.authorize(
                session,
                principal,
                found.organization_id,
                action,
                resource,
                when_archived=when_archived,
            )
        except NotFound:
            raise NotFound(missing) from None
        return found, role

    async def effective_actions(
        self,
        session: AsyncSession,
        principal: Principal,
        org_id: str,
        resource: Resource | None = None,
    ) -> tuple[str | None, list[str]]:
        """The caller's role in `org_id` and every action it may take there (sorted)."""
        role = await self.role_in(session, principal, org_id)
        if role is None:
            return None, []
        grants = (await self.standing(session, principal.id, org_id)).grants
        allowed = [a for a in ACTIONS if evaluate(principal, role, grants, a, resource)[0]]
        return role, allowed

    async def check(
        self,
        session: AsyncSession,
        principal: Principal,
        action: str,
        resource: Resource | None,
        organization_id: str | None,
    ) -> Decision:
        """`decide` for a check request: finds the organization from the resource (or the
        caller's context). Never raises for invisible things: they are simply not allowed."""
        if not is_known_action(action):
            return Decision(False, "unknown_action")
        if resource is not None and resource.id is not None:
            resolver = self.resolvers.get(resource.type)
            if resolver is None:
                return Decision(False, "unknown_resource_type")
            org_id = await resolver(session, resource.id)
            if org_id is None or (organization_id is not None and organization_id != org_id):
                return Decision(False, "not_found")
        else:
            if resource is not None and resource.type not in self.known_resource_types:
                return Decision(False, "unknown_resource_type")
            org_id = await self.context_org(session, principal, organization_id)
            if org_id is None:
                return Decision(False, "no_organization")
        return await self.decide(session, principal, org_id, action, resource)

    async def visible_org_ids(self, session: AsyncSession, principal: Principal) -> list[str]:
        """Organizations whose data the principal may list."""
        if principal.organization_id is not None:
            return [principal.organization_id]
        ids = set(await self.member_org_ids(session, principal.id))
        if self.dev_mode and principal.kind == "dev":
            ids.add(DEFAULT_ORGANIZATION_ID)
        return sorted(ids)

    async def listable_org_ids(
        self, session: AsyncSession, principal: Principal, organization_id: str | None, action: str
    ) -> list[str]:
        """The organizations a list covers: the one asked for (authorized for `action`), or
        every organization visible to the principal."""
        if organization_id is not None:
            await self.authorize(session, principal, organization_id, action)
            return [organization_id]
        return await self.visible_org_ids(session, principal)

    async def organization_for(
        self, session: AsyncSession, principal: Principal, requested: str | None
    ) -> str:
        """The organization a call acts in (see `context_org`); 400 when that is ambiguous."""
        org_id = await self.context_org(session, principal, requested)
        if org_id is None:
            raise Unprocessable("organization_id is required: you belong to several organizations.")
        return org_id

    async def context_org(
        self, session: AsyncSession, principal: Principal, requested: str | None
    ) -> str | None:
        """The organization a call means when it names none: the requested one, else the
        key's, else the default organization when visible, else the only one visible."""
        if requested:
            return requested
        if principal.organization_id:
            return principal.organization_id
        visible = await self.visible_org_ids(session, principal)
        if DEFAULT_ORGANIZATION_ID in visible:
            return DEFAULT_ORGANIZATION_ID
        return visible[0] if len(visible) == 1 else None


def refuses_when_archived(session: AsyncSession, when_archived: WhenArchived) -> bool:
    if when_archived == "refuse_writes":
        return is_write_transaction(session)
    return when_archived == "refuse"


def evaluate(
    principal: Principal,
    role: str,
    grants: Iterable[Grant],
    action: str,
    resource: Resource | None,
) -> tuple[bool, str]:
    """The pure rule: deny grant > role or allow grant > key scopes."""
    if not is_known_action(action):
        return False, "unknown_action"
    matching = [g for g in grants if grant_matches(g, action, resource)]
    if any(g.effect == "deny" for g in matching):
        return False, "denied_by_grant"
    if role_allows(role, action):
        reason = "role"
    elif matching:
        reason = "grant"
    else:
        return False, "role_does_not_allow"
    scopes = principal.scopes
    if scopes and action not in scopes and ALL_ACTIONS not in scopes:
        return False, "outside_key_scopes"
    return True, reason


def grant_matches(grant: Grant, action: str, resource: Resource | None) -> bool:
    """Whether a grant speaks about `action` on `resource`.

    An unscoped grant covers the whole organization. A grant scoped to a resource type, a
    resource or a team covers only checks about that very resource (or type).
    """
    if canonical_action(grant.action) not in (action, ALL_ACTIONS):
        return False
    if grant.resource_type is None and grant.team_id is None:
        return True
    if resource is None:
        return False
    if grant.team_id is not None and (resource.type, resource.id) != ("team", grant.team_id):
        return False
    if grant.resource_type is not None and grant.resource_type != resource.type:
        return False
    return grant.resource_id is None or grant.resource_id == resource.id
