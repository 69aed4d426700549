"""Which organization a call is about when the caller does not say."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.access.service import Access
from fabric_server.settings import DEFAULT_ORGANIZATION_ID


async def caller_organization(
    access: Access, session: AsyncSession, principal: Principal, requested: str | None
) -> str | None:
    """`requested`, else the organization the credentials are bound to, else the default
    organization when visible, else the caller's only organization; None if ambiguous.
    Nothing is authorized here."""
    if requested:
        return requested
    if principal.organization_id:
        return principal.organization_id
    visible = await access.visible_org_ids(session, principal)
    if DEFAULT_ORGANIZATION_ID in visible:
        return DEFAULT_ORGANIZATION_ID
    return visible[0] if len(visible) == 1 else None
