"""Who am I, where do I belong, and what may I do there (`/v1/me…`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.access.schemas import Me, MyPermission
from fabric_server.access.service import Access, Resource
from fabric_server.auth import repository as users
from fabric_server.auth.platform import PlatformAdmins
from fabric_server.orgs import repository as orgs
from fabric_server.orgs.models import Organization, Team


@dataclass
class Identity:
    access: Access
    platform_admins: PlatformAdmins

    async def me(self, session: AsyncSession, principal: Principal) -> Me:
        user = await users.get_user(session, principal.id)
        return Me(
            principal_id=principal.id,
            authenticated=principal.kind != "dev",
            kind=principal.kind,
            email=user.email if user else None,
            display_name=user.display_name if user else None,
            email_verified=user.email_verified if user else None,
            organization_id=principal.organization_id,
            api_key_id=principal.api_key_id,
            platform_admin=self.platform_admins.includes(principal, user),
        )

    async def organizations(
        self, session: AsyncSession, principal: Principal
    ) -> list[tuple[Organization, str]]:
        result = []
        ids = await self.access.visible_org_ids(session, principal)
        for org in await orgs.organizations(session, ids):
            role = await self.access.role_in(session, principal, org.id)
            if role is not None:
                result.append((org, role))
        return result

    async def teams(self, session: AsyncSession, principal: Principal) -> list[tuple[Team, str]]:
        ids = await self.access.visible_org_ids(session, principal)
        return await orgs.teams_of(session, principal.id, ids)

    async def permissions(self, session: AsyncSession, principal: Principal) -> list[MyPermission]:
        """One entry per organization (team_id null), then one per team the caller is in."""
        result = []
        for org, _ in await self.organizations(session, principal):
            role, actions = await self.access.effective_actions(session, principal, org.id)
            if role is not None:
                result.append(
                    MyPermission(organization_id=org.id, team_id=None, role=role, actions=actions)
                )
        for team, team_role in await self.teams(session, principal):
            org_role, actions = await self.access.effective_actions(
                session, principal, team.organization_id, Resource("team", team.id)
            )
            if org_role is not None:
                result.append(
                    MyPermission(
                        organization_id=team.organization_id,
                        team_id=team.id,
                        role=team_role,
                        actions=actions,
                    )
                )
        return result
