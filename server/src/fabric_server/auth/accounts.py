"""Creating accounts: the user and their personal organization."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.auth import repository
from fabric_server.auth.models import User
from fabric_server.db.unique import write_unique
from fabric_server.errors import Conflict
from fabric_server.events.outbox import EventRecorder

# Creates a new user's personal organization (the user its owner) and answers its id; the
# organizations domain provides it (`orgs.personal`).
PersonalOrganization = Callable[[AsyncSession, User], Awaitable[str]]


class Accounts:
    def __init__(self, events: EventRecorder, personal_organization: PersonalOrganization) -> None:
        self.events = events
        self.personal_organization = personal_organization

    async def create(
        self,
        session: AsyncSession,
        *,
        email: str | None,
        display_name: str | None,
        password_hash: str | None,
        email_verified: bool,
        method: str,
    ) -> User:
        """A new user who owns a new personal organization; 409 when the email is taken."""
        if email is not None and await repository.user_by_email(session, email) is not None:
            raise email_taken()
        user = User(
            email=email,
            display_name=display_name,
            email_verified=email_verified,
            password_hash=password_hash,
        )
        await write_unique(session, partial(repository.add_user, session, user), email_taken)
        org_id = await self.personal_organization(session, user)
        await self.events.record(
            session,
            "auth.signup",
            organization_id=org_id,
            payload={"user_id": user.id, "method": method},
        )
        return user


def email_taken() -> Conflict:
    return Conflict("An account with this email already exists.")
