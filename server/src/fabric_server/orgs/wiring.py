"""Builds the organizations domain: organizations and teams, members, invitations, limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fabric_server.assembly import Assembled, Platform
from fabric_server.auth.accounts import Accounts
from fabric_server.auth.platform import PlatformAdmins
from fabric_server.engine.admission import InFlightLimit
from fabric_server.mail import Mailer
from fabric_server.orgs import repository
from fabric_server.orgs.invitations import InvitationService
from fabric_server.orgs.limits import LimitService
from fabric_server.orgs.me import Identity
from fabric_server.orgs.members import MemberService
from fabric_server.orgs.service import OrgService


@dataclass(kw_only=True)
class Orgs(Assembled):
    service: OrgService
    members: MemberService
    invitations: InvitationService
    limits: LimitService
    #: The caller's own view (`GET /v1/me`): who they are and where they belong.
    identity: Identity


def assemble(
    platform: Platform,
    mailer: Mailer,
    accounts: Accounts,
    platform_admins: PlatformAdmins,
    admissions: Mapping[str, InFlightLimit],
) -> Orgs:
    """`admissions`: the in-flight limits an organization's limits override, by name."""
    access, events = platform.access, platform.events
    service = OrgService(access, events)
    return Orgs(
        service=service,
        members=MemberService(access, events, service),
        invitations=InvitationService(platform.settings, access, events, mailer, service, accounts),
        limits=LimitService(access, platform_admins, events, admissions),
        identity=Identity(access, platform_admins),
        resolvers={"team": repository.organization_of_team},
    )
