"""SQL for organizations, memberships and teams."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.models import Membership
from fabric_server.access.repository import member_role
from fabric_server.auth.models import User
from fabric_server.orgs.models import Invitation, Organization, Team, TeamMember
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, DEV_OWNER_ID


async def exists(session: AsyncSession, org_id: str) -> bool:
    found = await session.scalar(select(Organization.id).where(Organization.id == org_id))
    return found is not None


async def archived(session: AsyncSession, org_id: str) -> bool | None:
    """Whether the organization is archived; None when there is no such organization."""
    flag: bool | None = await session.scalar(
        select(Organization.archived).where(Organization.id == org_id)
    )
    return flag


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


async def get_organization(session: AsyncSession, org_id: str) -> Organization | None:
    return await session.get(Organization, org_id)


async def organizations(session: AsyncSession, org_ids: list[str]) -> list[Organization]:
    rows = await session.scalars(
        select(Organization).where(Organization.id.in_(org_ids)).order_by(Organization.id)
    )
    return list(rows)


async def members(session: AsyncSession, org_id: str) -> list[tuple[Membership, User | None]]:
    rows = await session.execute(
        select(Membership, User)
        .outerjoin(User, User.id == Membership.principal_id)
        .where(Membership.organization_id == org_id)
        .order_by(Membership.created_at, Membership.id)
    )
    return [(membership, user) for membership, user in rows.all()]


async def lock_membership(
    session: AsyncSession, org_id: str, principal_id: str
) -> Membership | None:
    """The membership, row-locked until commit and read afresh."""
    return await session.scalar(
        select(Membership)
        .where(Membership.organization_id == org_id, Membership.principal_id == principal_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def owner_count(session: AsyncSession, org_id: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(
            Membership.organization_id == org_id,
            Membership.role == "owner",
            Membership.active.is_(True),
        )
    )
    return int(count or 0)


async def delete_membership(session: AsyncSession, membership: Membership) -> None:
    await session.delete(membership)
    await session.flush()


async def delete_team_memberships(session: AsyncSession, org_id: str, principal_id: str) -> int:
    """Take the principal out of every team of the organization; how many it was in."""
    stmt = delete(TeamMember).where(
        TeamMember.organization_id == org_id, TeamMember.principal_id == principal_id
    )
    result: CursorResult[Any] = await session.execute(stmt)  # type: ignore[assignment]
    return result.rowcount


async def membership(session: AsyncSession, org_id: str, principal_id: str) -> Membership | None:
    return await session.scalar(
        select(Membership).where(
            Membership.organization_id == org_id, Membership.principal_id == principal_id
        )
    )


async def add_membership(
    session: AsyncSession, org_id: str, principal_id: str, role: str
) -> Membership:
    row = Membership(organization_id=org_id, principal_id=principal_id, role=role)
    session.add(row)
    await session.flush()
    return row


async def get_team(session: AsyncSession, team_id: str) -> Team | None:
    return await session.get(Team, team_id)


async def organization_of_team(session: AsyncSession, team_id: str) -> str | None:
    """Resolver for permission checks on `team:<id>`."""
    team = await get_team(session, team_id)
    return None if team is None else team.organization_id


async def teams(session: AsyncSession, org_id: str) -> list[Team]:
    rows = await session.scalars(
        select(Team).where(Team.organization_id == org_id).order_by(Team.slug)
    )
    return list(rows)


async def add_team(session: AsyncSession, team: Team) -> Team:
    """Insert a team (flushed: a slug taken in the organization raises IntegrityError)."""
    session.add(team)
    await session.flush()
    return team


async def team_slug_taken(session: AsyncSession, org_id: str, slug: str) -> bool:
    found = await session.scalar(
        select(Team.id).where(Team.organization_id == org_id, Team.slug == slug)
    )
    return found is not None


async def add_team_member(
    session: AsyncSession, team: Team, principal_id: str, role: str
) -> TeamMember:
    row = TeamMember(
        team_id=team.id, organization_id=team.organization_id, principal_id=principal_id, role=role
    )
    session.add(row)
    await session.flush()
    return row


async def team_member(session: AsyncSession, team_id: str, principal_id: str) -> TeamMember | None:
    return await session.scalar(
        select(TeamMember).where(
            TeamMember.team_id == team_id, TeamMember.principal_id == principal_id
        )
    )


async def teams_of(
    session: AsyncSession, principal_id: str, org_ids: list[str]
) -> list[tuple[Team, str]]:
    """The teams a principal belongs to within `org_ids`, with their team role."""
    rows = await session.execute(
        select(Team, TeamMember.role)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.principal_id == principal_id, Team.organization_id.in_(org_ids))
        .order_by(Team.organization_id, Team.slug)
    )
    return [(team, role) for team, role in rows.all()]


# --- invitations ---------------------------------------------------------------------------


async def lock_organization(session: AsyncSession, org_id: str) -> Organization | None:
    """Serialise writers on one organization until commit (PostgreSQL row lock; SQLite
    transactions that write are serialised already); the row, read afresh."""
    return await session.scalar(
        select(Organization)
        .where(Organization.id == org_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def add_invitation(session: AsyncSession, invitation: Invitation) -> Invitation:
    session.add(invitation)
    await session.flush()
    return invitation


async def get_invitation(session: AsyncSession, invitation_id: str) -> Invitation | None:
    return await session.get(Invitation, invitation_id)


async def pending_invitation(session: AsyncSession, org_id: str, email: str) -> Invitation | None:
    return await session.scalar(
        select(Invitation).where(
            Invitation.organization_id == org_id,
            Invitation.email == email,
            Invitation.status == "pending",
        )
    )


async def invitations(session: AsyncSession, org_id: str) -> list[Invitation]:
    rows = await session.scalars(
        select(Invitation)
        .where(Invitation.organization_id == org_id)
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
    )
    return list(rows)


async def live_pending_expiries(
    session: AsyncSession, org_id: str, now: dt.datetime
) -> list[dt.datetime]:
    """When each pending, unexpired invitation of the organization expires (soonest first)."""
    rows = await session.scalars(
        select(Invitation.expires_at)
        .where(
            Invitation.organization_id == org_id,
            Invitation.status == "pending",
            Invitation.expires_at > now,
        )
        .order_by(Invitation.expires_at)
    )
    return list(rows)


async def invitations_since(
    session: AsyncSession, org_id: str, since: dt.datetime
) -> list[dt.datetime]:
    """Creation times of the organization's invitations since `since` (oldest first)."""
    rows = await session.scalars(
        select(Invitation.created_at)
        .where(Invitation.organization_id == org_id, Invitation.created_at > since)
        .order_by(Invitation.created_at)
    )
    return list(rows)


async def settle_invitation(
    session: AsyncSession, invitation_id: str, status: str, **values: Any
) -> bool:
    """Move a pending invitation to `status`; False when it was no longer pending."""
    stmt = (
        update(Invitation)
        .where(Invitation.id == invitation_id, Invitation.status == "pending")
        .values(status=status, **values)
        .execution_options(synchronize_session="fetch")
    )
    result: CursorResult[Any] = await session.execute(stmt)  # type: ignore[assignment]
    return result.rowcount == 1


async def delete_dead_invitations(
    session: AsyncSession, older_than: dt.datetime, limit: int
) -> int:
    """Delete up to `limit` invitations that expired or were revoked before `older_than`.
    Accepted ones are kept: they record who let a member in, and as what."""
    dead = (
        select(Invitation.id)
        .where(
            or_(
                and_(
                    Invitation.status.in_(("pending", "expired")),
                    Invitation.expires_at < older_than,
                ),
                and_(Invitation.status == "revoked", Invitation.revoked_at < older_than),
            )
        )
        .limit(limit)
    )
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        delete(Invitation)
        .where(Invitation.id.in_(dead))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)
