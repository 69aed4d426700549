"""Authorization: may this principal do this action in this organization?"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.policy import role_allows
from fabric_server.api.auth import Principal
from fabric_server.errors import BadRequest, Forbidden, NotFound
from fabric_server.orgs import repository as orgs
from fabric_server.settings import DEFAULT_ORGANIZATION_ID


class Access:
    """Answers authorization questions; another organization's data is simply not found."""

    def __init__(self, *, dev_mode: bool) -> None:
        self.dev_mode = dev_mode

    async def role_in(self, session: AsyncSession, principal: Principal, org_id: str) -> str | None:
        if principal.organization_id is not None and principal.organization_id != org_id:
            return None
        role = await orgs.member_role(session, org_id, principal.id)
        # Dev mode: any asserted principal works in the default organization.
        if (
            role is None
            and self.dev_mode
            and principal.kind == "dev"
            and org_id == DEFAULT_ORGANIZATION_ID
        ):
            return "admin"
        return role

    async def authorize(
        self, session: AsyncSession, principal: Principal, org_id: str, action: str
    ) -> str:
        """Return the caller's role in `org_id`, or raise 404 (invisible) / 403 (not allowed)."""
        role = await self.role_in(session, principal, org_id)
        if role is None or not await orgs.exists(session, org_id):
            raise NotFound(f"Organization {org_id} was not found.")
        if not role_allows(role, action):
            raise Forbidden(f"Your role ({role}) does not allow {action}.")
        if principal.scopes and action not in principal.scopes and "*" not in principal.scopes:
            raise Forbidden(f"These credentials are not scoped for {action}.")
        return role

    async def visible_org_ids(self, session: AsyncSession, principal: Principal) -> list[str]:
        """Organizations whose data the principal may list."""
        if principal.organization_id is not None:
            return [principal.organization_id]
        ids = set(await orgs.member_org_ids(session, principal.id))
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
        """The organization a call acts in: the one asked for, else the caller's only (or
        default) organization; 400 when that is ambiguous."""
        if requested:
            return requested
        if principal.organization_id:
            return principal.organization_id
        visible = await self.visible_org_ids(session, principal)
        if DEFAULT_ORGANIZATION_ID in visible:
            return DEFAULT_ORGANIZATION_ID
        if len(visible) == 1:
            return visible[0]
        raise BadRequest("organization_id is required: you belong to several organizations.")
