"""Invitations: an admin invites an email address; its owner accepts and becomes a member.

Two ways to accept (wire-spec §9.8): signed in (`POST …/accept`, the account's verified
email must be the invited one), or with the mailed token (`GET …/accept?token=`), which
proves control of the mailbox — an account is made for the address if it has none. An
account that exists but never proved its address is not verified by an invitation (it was
not mailed to that account: anyone may have registered the address); its owner proves it
first with the account's own verification link. The token is stored as its SHA-256 only.

Dev mode convenience: a dev principal (no credentials, or `X-Principal-Id`) may accept any
invitation, so the whole flow can be tried without mail or sign-in.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.models import Membership
from fabric_server.access.policy import role_at_least
from fabric_server.access.principal import Principal
from fabric_server.access.service import Access, OrganizationArchived, WhenArchived
from fabric_server.auth import repository as users
from fabric_server.auth.accounts import Accounts
from fabric_server.auth.models import User
from fabric_server.auth.passwords import normalize_email
from fabric_server.auth.tokens import new_opaque_token, token_digest
from fabric_server.db.types import utcnow
from fabric_server.db.unique import write_unique
from fabric_server.errors import Conflict, DomainError, Forbidden, NotFound, RateLimited
from fabric_server.events.outbox import EventRecorder
from fabric_server.mail import Mailer
from fabric_server.orgs import repository
from fabric_server.orgs.models import Invitation
from fabric_server.orgs.service import OrgService
from fabric_server.settings import Settings


class InvitationAlreadyAccepted(Conflict):
    code = "invitation_already_accepted"


class EmailNotVerified(Forbidden):
    """The invited address has an account that never proved it owns the address."""

    code = "email_not_verified"

    def __init__(self, email: str) -> None:
        super().__init__(
            "An account for this address exists but has not confirmed it: confirm it with "
            "the verification link just mailed to it, then open the invitation again."
        )
        self.email = email


class Gone(DomainError):
    status_code = 410
    code = "gone"


class InvitationRevoked(Gone):
    code = "invitation_revoked"


class InvitationExpired(Gone):
    code = "invitation_expired"


@dataclass(frozen=True)
class Accepted:
    invitation: Invitation
    membership: Membership
    user: User | None


def status_of(invitation: Invitation, now: dt.datetime) -> str:
    """The status callers see: a pending invitation past its expiry is `expired`."""
    if invitation.status == "pending" and invitation.expires_at <= now:
        return "expired"
    return invitation.status


class InvitationService:
    def __init__(
        self,
        settings: Settings,
        access: Access,
        events: EventRecorder,
        mailer: Mailer,
        orgs: OrgService,
        accounts: Accounts,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.access = access
        self.events = events
        self.mailer = mailer
        self.orgs = orgs
        self.accounts = accounts
        self.clock = clock

    async def create(
        self,
        session: AsyncSession,
        principal: Principal,
        org_id: str,
        email: str,
        role: str,
        team_id: str | None,
    ) -> Invitation:
        """Invite `email` to `org_id` with `role` and mail them a link.

        403 without `member.invite` or for a role above the inviter's; 409 when a pending
        invitation exists or the address is already a member; 429 over the limits.
        """
        inviter_role = await self.access.authorize(session, principal, org_id, "member.invite")
        if not role_at_least(inviter_role, role):
            raise Forbidden(f"An {inviter_role} cannot invite someone as {role}.")
        address = normalize_email(email)
        if team_id is not None:
            team = await repository.get_team(session, team_id)
            if team is None or team.organization_id != org_id:
                raise NotFound(f"Team {team_id} was not found.")
        await repository.lock_organization(session, org_id)
        now = self.clock()
        await self._check_not_member(session, org_id, address)
        existing = await repository.pending_invitation(session, org_id, address)
        if existing is not None:
            if existing.expires_at > now:
                raise Conflict(
                    f"{address} already has a pending invitation to this organization.",
                    details={"invitation_id": existing.id},
                )
            await repository.settle_invitation(session, existing.id, "expired")
        await self._check_limits(session, org_id, now)
        token = new_opaque_token()
        invitation = Invitation(
            organization_id=org_id,
            team_id=team_id,
            email=address,
            role=role,
            token_hash=token_digest(token),
            invited_by=principal.id,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=self.settings.invitation_ttl_seconds),
        )
        await write_unique(
            session,
            partial(repository.add_invitation, session, invitation),
            partial(Conflict, f"{address} already has a pending invitation."),
        )
        await self._mail(session, invitation, token)
        await self.events.record(
            session,
            "invitation.created",
            organization_id=org_id,
            payload={
                "invitation_id": invitation.id,
                "email": address,
                "role": role,
                "team_id": team_id,
                "invited_by": principal.id,
            },
        )
        return invitation

    async def get(
        self,
        session: AsyncSession,
        principal: Principal,
        inv_id: str,
        *,
        when_archived: WhenArchived = "refuse_writes",
    ) -> Invitation:
        """An invitation, for those who may invite in its organization (others: 404)."""
        found, _ = await self.access.authorize_found(
            session,
            principal,
            await repository.get_invitation(session, inv_id),
            "member.invite",
            missing=f"Invitation {inv_id} was not found.",
            when_archived=when_archived,
        )
        return found

    async def list(
        self, session: AsyncSession, principal: Principal, org_id: str
    ) -> list[Invitation]:
        await self.access.authorize(session, principal, org_id, "member.invite")
        return await repository.invitations(session, org_id)

    async def revoke(self, session: AsyncSession, principal: Principal, inv_id: str) -> Invitation:
        """Withdraw a pending invitation. One already accepted or revoked is left as it is
        (revoking never removes a member) and returned unchanged. Also allowed in an archived
        organization: it only takes access away."""
        invitation = await self.get(session, principal, inv_id, when_archived="allow")
        now = self.clock()
        if await repository.settle_invitation(session, inv_id, "revoked", revoked_at=now):
            await self.events.record(
                session,
                "invitation.revoked",
                organization_id=invitation.organization_id,
                payload={"invitation_id": inv_id, "revoked_by": principal.id},
            )
            await session.refresh(invitation)
        return invitation

    async def accept_signed_in(
        self, session: AsyncSession, principal: Principal, inv_id: str
    ) -> Accepted:
        """Accept as the signed-in user whose verified email was invited."""
        invitation = await repository.get_invitation(session, inv_id)
        if invitation is None:
            raise NotFound(f"Invitation {inv_id} was not found.")
        if not (self.access.dev_mode and principal.kind == "dev"):
            if principal.kind == "api_key":
                raise Forbidden("Invitations are accepted by people, not API keys.")
            user = await users.get_user(session, principal.id)
            if user is None or user.email != invitation.email:
                raise Forbidden("This invitation was sent to another email address.")
            if not user.email_verified:
                raise Forbidden("Verify your email address before accepting invitations.")
        return await self._accept(session, invitation, principal.id)

    async def accept_with_token(self, session: AsyncSession, inv_id: str, token: str) -> Accepted:
        """Accept with the mailed token: the invited address's account joins (an account is
        made for it when there is none; the mailbox is proven, so it counts as verified).
        403 `email_not_verified` when the address has an account that never proved it."""
        invitation = await repository.get_invitation(session, inv_id)
        if invitation is None or not hmac.compare_digest(
            invitation.token_hash, token_digest(token)
        ):
            raise NotFound(f"Invitation {inv_id} was not found (or the link is not valid).")
        self._check_acceptable(invitation)
        user = await users.user_by_email(session, invitation.email)
        if user is None:
            user = await self.accounts.create(
                session,
                email=invitation.email,
                display_name=None,
                password_hash=None,
                email_verified=True,
                method="invitation",
            )
        elif not user.email_verified:
            raise EmailNotVerified(invitation.email)
        return await self._accept(session, invitation, user.id)

    async def _accept(
        self, session: AsyncSession, invitation: Invitation, principal_id: str
    ) -> Accepted:
        self._check_acceptable(invitation)
        if await repository.archived(session, invitation.organization_id):
            raise OrganizationArchived(invitation.organization_id)
        now = self.clock()
        if not await repository.settle_invitation(
            session, invitation.id, "accepted", accepted_at=now, accepted_by=principal_id
        ):
            raise InvitationAlreadyAccepted("This invitation was already used.")
        org_id = invitation.organization_id
        membership = await repository.membership(session, org_id, principal_id)
        if membership is None:
            membership = await self.orgs.add_member(
                session, org_id, principal_id, invitation.role, via="invitation"
            )
        elif not membership.active:
            membership.active, membership.role = True, invitation.role
        if invitation.team_id is not None:
            team = await repository.get_team(session, invitation.team_id)
            if team and await repository.team_member(session, team.id, principal_id) is None:
                await repository.add_team_member(session, team, principal_id, invitation.role)
        await self.events.record(
            session,
            "invitation.accepted",
            organization_id=org_id,
            payload={"invitation_id": invitation.id, "principal_id": principal_id},
        )
        await session.refresh(invitation)
        return Accepted(invitation, membership, await users.get_user(session, principal_id))

    def _check_acceptable(self, invitation: Invitation) -> None:
        status = status_of(invitation, self.clock())
        if status == "accepted":
            raise InvitationAlreadyAccepted("This invitation was already accepted.")
        if status == "revoked":
            raise InvitationRevoked("This invitation was revoked.")
        if status == "expired":
            raise InvitationExpired("This invitation has expired: ask for a new one.")

    async def _check_not_member(self, session: AsyncSession, org_id: str, email: str) -> None:
        user: User | None = await users.user_by_email(session, email)
        if user is None:
            return
        membership = await repository.membership(session, org_id, user.id)
        if membership is not None and membership.active:
            raise Conflict(f"{email} is already a member of this organization.")

    async def _check_limits(self, session: AsyncSession, org_id: str, now: dt.datetime) -> None:
        pending = await repository.live_pending_expiries(session, org_id, now)
        if len(pending) >= self.settings.invitation_max_pending:
            wait = (pending[0] - now).total_seconds()
            raise RateLimited(
                f"This organization has {len(pending)} pending invitations, the most allowed.",
                retry_after=max(1, math.ceil(wait)),
            )
        hour = dt.timedelta(hours=1)
        recent = await repository.invitations_since(session, org_id, now - hour)
        limit = self.settings.invitation_max_per_hour
        if len(recent) >= limit:
            wait = (recent[-limit] + hour - now).total_seconds()
            raise RateLimited(
                f"This organization sent {limit} invitations in the last hour, the most allowed.",
                retry_after=max(1, math.ceil(wait)),
            )

    async def _mail(self, session: AsyncSession, invitation: Invitation, token: str) -> None:
        org = await repository.get_organization(session, invitation.organization_id)
        name = org.name if org else "an organization"
        base = self.settings.resolved_public_url
        link = f"{base}/v1/invitations/{invitation.id}/accept?token={quote(token, safe='')}"
        body = (
            f"You are invited to join {name} on Fabric as {invitation.role}.\n\n"
            "Accept the invitation by opening this link:\n\n"
            f"  {link}\n\n"
            "Already signed in to Fabric as this address? You can also accept it there.\n"
            f"The invitation expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
            "If you did not expect it, ignore this mail.\n"
        )
        await self.mailer.send(session, invitation.email, f"Join {name} on Fabric", body)
