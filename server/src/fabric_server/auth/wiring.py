"""The accounts domain assembled: one object the service container holds."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from fabric_server.access.principal import Principal
from fabric_server.assembly import Assembled, Platform
from fabric_server.auth.accounts import PersonalOrganization
from fabric_server.auth.claim import AddressProof
from fabric_server.auth.core import AuthCore
from fabric_server.auth.linking import SocialLinker
from fabric_server.auth.mailed import MailedTokens
from fabric_server.auth.recovery import Recovery
from fabric_server.auth.redact import install_access_log_redaction
from fabric_server.auth.service import AuthService
from fabric_server.auth.sessions import Sessions
from fabric_server.auth.social import OAuthFlow
from fabric_server.mail import Mailer


@dataclass(kw_only=True)
class Auth(Assembled):
    core: AuthCore
    service: AuthService
    sessions: Sessions
    recovery: Recovery
    oauth: OAuthFlow
    linker: SocialLinker

    def start(self) -> None:
        self.core.start()
        install_access_log_redaction()

    async def verify_credentials(self, request: Request, token: str) -> Principal | None:
        """The `CredentialVerifier` for access tokens (see `Sessions.verify_credentials`)."""
        return await self.sessions.verify_credentials(request, token)


def assemble(
    platform: Platform, mailer: Mailer, personal_organization: PersonalOrganization
) -> Auth:
    """`personal_organization` creates each new account's own organization."""
    settings = platform.settings
    core = AuthCore(
        settings,
        platform.db,
        platform.events,
        mailer,
        personal_organization=personal_organization,
    )
    sessions = Sessions(core)
    sessions.use_cache(platform.versions)
    mailed = MailedTokens(core)
    proof = AddressProof(core, sessions)
    return Auth(
        core=core,
        service=AuthService(core, sessions, mailed),
        sessions=sessions,
        recovery=Recovery(core, sessions, mailed, proof),
        oauth=OAuthFlow(settings),
        linker=SocialLinker(core, sessions, mailed, proof),
    )
