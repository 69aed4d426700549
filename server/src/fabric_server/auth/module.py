"""The accounts domain assembled: one object the service container holds."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from fabric_server.api.auth import Principal
from fabric_server.auth.linking import SocialLinker
from fabric_server.auth.recovery import Recovery
from fabric_server.auth.service import AuthService
from fabric_server.auth.social import OAuthFlow
from fabric_server.db.database import Database
from fabric_server.events.outbox import EventRecorder
from fabric_server.mail import Mailer
from fabric_server.settings import Settings


@dataclass
class Auth:
    service: AuthService
    recovery: Recovery
    oauth: OAuthFlow
    linker: SocialLinker

    def start(self) -> None:
        self.service.start()

    async def verify_credentials(self, request: Request, token: str) -> Principal | None:
        """The `CredentialVerifier` for access tokens (see `AuthService.verify_credentials`)."""
        return await self.service.verify_credentials(request, token)


def build_auth(settings: Settings, db: Database, events: EventRecorder, mailer: Mailer) -> Auth:
    service = AuthService(settings, db, events, mailer)
    return Auth(
        service=service,
        recovery=Recovery(service),
        oauth=OAuthFlow(settings),
        linker=SocialLinker(service),
    )
