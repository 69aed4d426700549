"""What every part of the accounts domain shares: settings, clock, keys, hashing, mail."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from fabric_server.auth.accounts import Accounts, PersonalOrganization
from fabric_server.auth.mail import AuthMail
from fabric_server.auth.models import User
from fabric_server.auth.passwords import Passwords
from fabric_server.auth.ratelimit import SlidingWindowLimiter
from fabric_server.auth.tokens import TokenSigner, load_signing_secret
from fabric_server.db.database import Database
from fabric_server.db.types import utcnow
from fabric_server.events.outbox import EventRecorder
from fabric_server.mail import Mailer
from fabric_server.settings import Settings

log = logging.getLogger("fabric_server.auth")

PURPOSE_VERIFY = "verify_email"
PURPOSE_MAGIC_LINK = "magic_link"
PURPOSE_RESET = "password_reset"


@dataclass(frozen=True)
class ClientInfo:
    """Who is on the other end of a request, for sessions and audit events."""

    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class IssuedTokens:
    user: User
    session_id: str
    access_token: str
    refresh_token: str
    expires_in: int


class AuthCore:
    """Shared by sign-in, sessions, recovery and social sign-in.

    `clock` is the one source of time for expiries and locks; tests replace it.
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        events: EventRecorder,
        mailer: Mailer,
        *,
        personal_organization: PersonalOrganization,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.db = db
        self.events = events
        self.clock = clock
        self.passwords = Passwords(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            min_length=settings.password_min_length,
            require_classes=settings.password_require_classes,
            concurrency=settings.password_hash_concurrency,
            queue=settings.password_hash_queue,
        )
        self.mail = AuthMail(
            mailer, public_url=settings.resolved_public_url, link_url=settings.auth_link_url
        )
        self.limiter = SlidingWindowLimiter(
            settings.auth_rate_limit, settings.auth_rate_window_seconds
        )
        self.accounts = Accounts(events, personal_organization)
        self._signer: TokenSigner | None = None

    def start(self) -> None:
        """Load (in dev mode: create) the signing secret. Called when the server starts."""
        self._signer = TokenSigner(load_signing_secret(self.settings))
        if not self.settings.is_dev and self.settings.public_url is None:
            log.warning(
                "FABRIC_PUBLIC_URL is not set: mailed links and social sign-in callbacks "
                "point at %s",
                self.settings.resolved_public_url,
            )

    @property
    def signer(self) -> TokenSigner:
        if self._signer is None:
            raise RuntimeError("the accounts domain was not started")
        return self._signer
