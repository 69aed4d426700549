"""Changing a member's role and removing members (or leaving an organization).

Rules: `member.manage` (admins and owners) is needed to change or remove someone else; nobody
acts on a member who ranks above them or grants a role above their own, so only owners grant
or take away the owner role; an organization always keeps at least one owner (409
`last_owner`). Anyone may leave, except its last owner. Removing a member takes them out of
the organization's teams, deletes their grants there and disables the API keys they made for
it — a key acts as its creator, and must stay dead should they ever be invited back.

Each change locks the organization row first, which serialises concurrent role changes (two
owners demoting each other cannot leave none), then the rows it changes — all before its
first event, which takes the event-order lock.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access import repository as access_repository
from fabric_server.access.models import Membership
from fabric_server.access.policy import role_at_least
from fabric_server.access.principal import Principal
from fabric_server.access.service import Access
from fabric_server.auth import repository as users
from fabric_server.auth.models import User
from fabric_server.errors import Conflict, Forbidden, NotFound
from fabric_server.events.outbox import EventRecorder
from fabric_server.orgs import repository
from fabric_server.orgs.service import OrgService


class LastOwner(Conflict):
    code = "last_owner"


class MemberService:
    def __init__(self, access: Access, events: EventRecorder, orgs: OrgService) -> None:
        self.access = access
        self.events = events
        self.orgs = orgs

    async def change_role(
        self, session: AsyncSession, principal: Principal, org_id: str, member_id: str, role: str
    ) -> tuple[Membership, User | None]:
        """Give `member_id` the role `role` in `org_id`; the membership as it is now, and
        the member's account (None for a principal without one)."""
        await self.access.authorize(session, principal, org_id, "member.manage")
        await self.orgs.lock_writable(session, org_id)
        # Again under the lock: the caller's own role may have changed while it waited.
        actor_role = await self.access.authorize(session, principal, org_id, "member.manage")
        membership = await self._locked_member(session, org_id, member_id)
        previous = membership.role
        if not (role_at_least(actor_role, previous) and role_at_least(actor_role, role)):
            raise Forbidden(
                f"{_a(actor_role)} cannot change a member's role from {previous} to {role}."
            )
        user = await users.get_user(session, member_id)
        if previous == role:
            return membership, user
        if previous == "owner":
            await self._keep_an_owner(session, org_id, "demote")
        membership.role = role
        await session.flush()
        await self.events.record(
            session,
            "member.role_changed",
            organization_id=org_id,
            payload={"principal_id": member_id, "from": previous, "to": role, "by": principal.id},
        )
        return membership, user

    async def remove(
        self, session: AsyncSession, principal: Principal, org_id: str, member_id: str
    ) -> None:
        """Take `member_id` out of `org_id` (the caller themselves: leave it). Allowed in an
        archived organization: it only takes access away."""
        # An API key acts as its creator, but leaving is for people: a key needs the action.
        leaving = member_id == principal.id and principal.kind != "api_key"
        action = "organization.read" if leaving else "member.manage"
        await self.access.authorize(session, principal, org_id, action, when_archived="allow")
        await repository.lock_organization(session, org_id)
        # Again under the lock: the caller's own role may have changed while it waited.
        actor_role = await self.access.authorize(
            session, principal, org_id, action, when_archived="allow"
        )
        membership = await self._locked_member(session, org_id, member_id)
        role = membership.role
        if not leaving and not role_at_least(actor_role, role):
            raise Forbidden(f"{_a(actor_role)} cannot remove {_a(role).lower()}.")
        if role == "owner":
            await self._keep_an_owner(session, org_id, "remove")
        keys = await access_repository.live_keys_of(session, org_id, member_id)
        for key in keys:
            key.disabled = True
        teams_left = await repository.delete_team_memberships(session, org_id, member_id)
        grants_deleted = await access_repository.delete_grants_of(session, org_id, member_id)
        await repository.delete_membership(session, membership)
        for key in keys:
            await self.events.record(
                session,
                "api_key.disabled",
                organization_id=org_id,
                payload={
                    "api_key_id": key.id,
                    "name": key.name,
                    "by": principal.id,
                    "reason": "creator_removed",
                },
            )
        await self.events.record(
            session,
            "member.removed",
            organization_id=org_id,
            payload={
                "principal_id": member_id,
                "role": role,
                "by": principal.id,
                "left": leaving,
                "teams_left": teams_left,
                "grants_deleted": grants_deleted,
                "api_keys_disabled": [key.id for key in keys],
            },
        )

    async def _locked_member(
        self, session: AsyncSession, org_id: str, member_id: str
    ) -> Membership:
        membership = await repository.lock_membership(session, org_id, member_id)
        if membership is None or not membership.active:
            raise NotFound(f"Member {member_id} was not found in this organization.")
        return membership

    async def _keep_an_owner(self, session: AsyncSession, org_id: str, verb: str) -> None:
        if await repository.owner_count(session, org_id) <= 1:
            raise LastOwner(
                f"Cannot {verb} the last owner: make another member an owner first.",
                details={"organization_id": org_id},
            )


def _a(role: str) -> str:
    return f"{'An' if role[0] in 'aeiou' else 'A'} {role}"
