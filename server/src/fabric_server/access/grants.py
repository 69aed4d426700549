"""Explicit permission grants: allow or deny one action to one principal (admin API)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access import repository
from fabric_server.access.models import PermissionGrant
from fabric_server.access.policy import (
    ALL_ACTIONS,
    canonical_action,
    is_known_action,
    role_at_least,
)
from fabric_server.access.principal import Principal
from fabric_server.access.schemas import GrantCreate
from fabric_server.access.service import Access
from fabric_server.errors import Forbidden, NotFound, ValidationFailed
from fabric_server.events.outbox import EventRecorder


class GrantService:
    def __init__(self, access: Access, events: EventRecorder) -> None:
        self.access = access
        self.events = events

    async def create(
        self, session: AsyncSession, principal: Principal, body: GrantCreate
    ) -> PermissionGrant:
        """Needs `permission.manage`. Nobody can allow an action they lack themselves, nor
        grant anything to someone whose role ranks above theirs."""
        org_id = body.organization_id
        role = await self.access.authorize(session, principal, org_id, "permission.manage")
        action = canonical_action(body.action)
        if action != ALL_ACTIONS and not is_known_action(action):
            raise ValidationFailed(
                f"{body.action} is not a known action.",
                details={"errors": [{"path": "action", "in": "body", "message": "unknown"}]},
            )
        if body.effect == "allow":
            _, held = await self.access.effective_actions(session, principal, org_id)
            if action == ALL_ACTIONS and role != "owner":
                raise Forbidden("Only owners can allow every action.")
            if action != ALL_ACTIONS and action not in held:
                raise Forbidden(f"You cannot allow {body.action}: you do not hold it.")
        target = await repository.member_role(session, org_id, body.principal_id)
        if target is not None and not role_at_least(role, target):
            raise Forbidden("You cannot change the permissions of someone above your role.")
        team_id = body.team_id
        if (
            team_id is not None
            and await self.access.organization_of(session, "team", team_id) != org_id
        ):
            raise NotFound(f"Team {team_id} was not found.")
        grant = await repository.add_grant(
            session,
            PermissionGrant(
                principal_id=body.principal_id,
                organization_id=org_id,
                team_id=body.team_id,
                effect=body.effect,
                action=action,
                resource_type=body.resource_type,
                resource_id=body.resource_id,
                created_by=principal.id,
            ),
        )
        await self._event(session, "permission.granted", grant, principal)
        return grant

    async def list(
        self, session: AsyncSession, principal: Principal, org_id: str, principal_id: str | None
    ) -> list[PermissionGrant]:
        await self.access.authorize(session, principal, org_id, "permission.manage")
        return await repository.list_grants(session, org_id, principal_id)

    async def delete(self, session: AsyncSession, principal: Principal, grant_id: str) -> None:
        missing = f"Permission grant {grant_id} was not found."
        grant, _ = await self.access.authorize_found(
            session,
            principal,
            await repository.get_grant(session, grant_id),
            "permission.manage",
            missing=missing,
        )
        await self._event(session, "permission.revoked", grant, principal)
        await repository.delete_grant(session, grant.id)

    async def _event(
        self, session: AsyncSession, kind: str, grant: PermissionGrant, principal: Principal
    ) -> None:
        await self.events.record(
            session,
            kind,
            organization_id=grant.organization_id,
            payload={
                "grant_id": grant.id,
                "principal_id": grant.principal_id,
                "effect": grant.effect,
                "action": grant.action,
                "by": principal.id,
            },
        )
