"""SQL for organizations and memberships."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.models import Membership, Organization, User
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, DEV_OWNER_ID


async def exists(session: AsyncSession, org_id: str) -> bool:
    found = await session.scalar(select(Organization.id).where(Organization.id == org_id))
    return found is not None


async def member_role(session: AsyncSession, org_id: str, principal_id: str) -> str | None:
    return await session.scalar(
        select(Membership.role).where(
            Membership.organization_id == org_id,
            Membership.principal_id == principal_id,
            Membership.active.is_(True),
        )
    )


async def member_org_ids(session: AsyncSession, principal_id: str) -> list[str]:
    rows = await session.scalars(
        select(Membership.organization_id).where(
            Membership.principal_id == principal_id, Membership.active.is_(True)
        )
    )
    return list(rows)


async def slug_taken(session: AsyncSession, slug: str) -> bool:
    found = await session.scalar(select(Organization.id).where(Organization.slug == slug))
    return found is not None


async def add_organization(session: AsyncSession, slug: str, name: str) -> Organization:
    """Insert an organization (flushed: a taken slug raises IntegrityError here)."""
    org = Organization(slug=slug, name=name)
    session.add(org)
    await session.flush()
    return org


async def add_member(session: AsyncSession, org_id: str, principal_id: str, role: str) -> None:
    session.add(Membership(organization_id=org_id, principal_id=principal_id, role=role))
    await session.flush()


async def seed_dev(session: AsyncSession) -> None:
    """Create the default organization and the dev owner if they are missing (idempotent)."""
    if await session.get(Organization, DEFAULT_ORGANIZATION_ID) is None:
        session.add(Organization(id=DEFAULT_ORGANIZATION_ID, slug="default", name="Default"))
    if await session.get(User, DEV_OWNER_ID) is None:
        session.add(User(id=DEV_OWNER_ID, email=None, display_name="Dev owner"))
    await session.flush()
    if await member_role(session, DEFAULT_ORGANIZATION_ID, DEV_OWNER_ID) is None:
        session.add(
            Membership(
                organization_id=DEFAULT_ORGANIZATION_ID, principal_id=DEV_OWNER_ID, role="owner"
            )
        )
