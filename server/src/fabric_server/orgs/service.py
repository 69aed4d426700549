"""Business rules for organizations, teams and members."""

from __future__ import annotations

from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.models import Membership
from fabric_server.access.principal import Principal
from fabric_server.access.service import Access, OrganizationArchived, Resource
from fabric_server.auth.models import User
from fabric_server.db.unique import write_unique
from fabric_server.errors import Conflict, Forbidden
from fabric_server.events.outbox import EventRecorder
from fabric_server.orgs import repository
from fabric_server.orgs.models import Organization, Team


class OrgService:
    def __init__(self, access: Access, events: EventRecorder) -> None:
        self.access = access
        self.events = events

    async def create_organization(
        self, session: AsyncSession, principal: Principal, slug: str, name: str
    ) -> Organization:
        """A new organization owned by the caller; 409 when the slug is taken."""
        if principal.kind == "api_key":
            raise Forbidden("API keys act inside their organization; they cannot create one.")
        taken = partial(_slug_taken, slug)
        if await repository.slug_taken(session, slug):
            raise taken()
        org = await write_unique(
            session, partial(repository.add_organization, session, slug, name), taken
        )
        await self.events.record(
            session,
            "organization.created",
            organization_id=org.id,
            payload={"slug": slug, "created_by": principal.id},
        )
        await self.add_member(session, org.id, principal.id, "owner", via="organization.created")
        return org

    async def update_organization(
        self,
        session: AsyncSession,
        principal: Principal,
        org_id: str,
        *,
        name: str | None,
        slug: str | None,
    ) -> Organization:
        """Rename the organization and/or change its slug (`organization.update`); 409 when
        the slug is taken. Fields left out (or unchanged) stay as they are."""
        await self.access.authorize(session, principal, org_id, "organization.update")
        org = await self.lock_writable(session, org_id)
        changes = {
            field: value
            for field, value in (("name", name), ("slug", slug))
            if value is not None and value != getattr(org, field)
        }
        if not changes:
            return org
        taken = partial(_slug_taken, slug)
        if "slug" in changes and await repository.slug_taken(session, changes["slug"]):
            raise taken()

        async def change() -> None:
            for field, value in changes.items():
                setattr(org, field, value)
            await session.flush()

        await write_unique(session, change, taken)
        await self.events.record(
            session,
            "organization.updated",
            organization_id=org_id,
            payload={"changes": changes, "updated_by": principal.id},
        )
        return org

    async def set_archived(
        self, session: AsyncSession, principal: Principal, org_id: str, archived: bool
    ) -> Organization:
        """Archive (read-only from then on) or unarchive the organization; owners only
        (`organization.archive`). Asking for the state it is already in changes nothing."""
        await self.access.authorize(
            session, principal, org_id, "organization.archive", when_archived="allow"
        )
        org = await repository.lock_organization(session, org_id)
        assert org is not None  # authorize found it
        if org.archived == archived:
            return org
        org.archived = archived
        await session.flush()
        await self.events.record(
            session,
            "organization.archived" if archived else "organization.unarchived",
            organization_id=org_id,
            payload={"by": principal.id},
        )
        return org

    async def lock_writable(self, session: AsyncSession, org_id: str) -> Organization:
        """The organization row, locked until commit; 409 if it was archived meanwhile."""
        org = await repository.lock_organization(session, org_id)
        assert org is not None  # the caller authorized a call in it
        if org.archived:
            raise OrganizationArchived(org_id)
        return org

    async def add_member(
        self, session: AsyncSession, org_id: str, principal_id: str, role: str, *, via: str
    ) -> Membership:
        membership = await repository.add_membership(session, org_id, principal_id, role)
        await self.events.record(
            session,
            "membership.created",
            organization_id=org_id,
            payload={"principal_id": principal_id, "role": role, "via": via},
        )
        return membership

    async def get_organization(
        self, session: AsyncSession, principal: Principal, org_id: str
    ) -> Organization:
        await self.access.authorize(
            session, principal, org_id, "organization.read", Resource("organization", org_id)
        )
        org = await repository.get_organization(session, org_id)
        assert org is not None  # authorize found it
        return org

    async def members(
        self, session: AsyncSession, principal: Principal, org_id: str
    ) -> list[tuple[Membership, User | None]]:
        await self.access.authorize(session, principal, org_id, "organization.read")
        return await repository.members(session, org_id)

    async def teams(self, session: AsyncSession, principal: Principal, org_id: str) -> list[Team]:
        await self.access.authorize(session, principal, org_id, "organization.read")
        return await repository.teams(session, org_id)

    async def create_team(
        self, session: AsyncSession, principal: Principal, org_id: str, slug: str, name: str
    ) -> Team:
        """A team in `org_id` (the caller joins it as its owner); 409 on a taken slug."""
        await self.access.authorize(session, principal, org_id, "team.create")
        taken = partial(Conflict, f"The team slug {slug!r} is taken in this organization.")
        if await repository.team_slug_taken(session, org_id, slug):
            raise taken()
        new = Team(organization_id=org_id, slug=slug, name=name, created_by=principal.id)
        team = await write_unique(session, partial(repository.add_team, session, new), taken)
        await repository.add_team_member(session, team, principal.id, "owner")
        await self.events.record(
            session,
            "team.created",
            organization_id=org_id,
            payload={"team_id": team.id, "slug": slug, "created_by": principal.id},
        )
        return team

    async def get_team(self, session: AsyncSession, principal: Principal, team_id: str) -> Team:
        found, _ = await self.access.authorize_found(
            session,
            principal,
            await repository.get_team(session, team_id),
            "organization.read",
            missing=f"Team {team_id} was not found.",
            resource=Resource("team", team_id),
        )
        return found


def _slug_taken(slug: str | None) -> Conflict:
    return Conflict(f"The organization slug {slug!r} is taken.")
