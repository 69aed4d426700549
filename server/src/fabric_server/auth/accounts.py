"""Creating accounts: the user, their personal organization, and (dev mode) the default org."""

from __future__ import annotations

import re
import secrets
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.auth import repository
from fabric_server.auth.models import User
from fabric_server.db.unique import write_unique
from fabric_server.errors import Conflict
from fabric_server.events.outbox import EventRecorder
from fabric_server.orgs import repository as orgs
from fabric_server.orgs.models import Organization
from fabric_server.settings import DEFAULT_ORGANIZATION_ID

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slug_base(email: str | None, display_name: str | None) -> str:
    """A readable slug stem from the email's local part (or the name): `ada.l@x.io` → `ada-l`."""
    source = (email or "").split("@", 1)[0] or display_name or ""
    slug = _NOT_SLUG.sub("-", source.lower()).strip("-")[:40].strip("-")
    return slug or "user"


class Accounts:
    def __init__(self, events: EventRecorder, *, dev_mode: bool) -> None:
        self.events = events
        self.dev_mode = dev_mode

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
        """A new user who owns a new personal organization; 409 when the email is taken.

        In dev mode the user also joins the default organization as an admin, so calls that
        default to it (as the SDK's do) work with the user's own token.
        """
        if email is not None and await repository.user_by_email(session, email) is not None:
            raise email_taken()
        user = User(
            email=email,
            display_name=display_name,
            email_verified=email_verified,
            password_hash=password_hash,
        )
        await write_unique(session, partial(repository.add_user, session, user), email_taken)
        org = await self._personal_organization(session, user)
        await orgs.add_member(session, org.id, user.id, "owner")
        if self.dev_mode and await orgs.exists(session, DEFAULT_ORGANIZATION_ID):
            await orgs.add_member(session, DEFAULT_ORGANIZATION_ID, user.id, "admin")
        await self.events.record(
            session,
            "auth.signup",
            organization_id=org.id,
            payload={"user_id": user.id, "method": method},
        )
        return user

    async def _personal_organization(self, session: AsyncSession, user: User) -> Organization:
        base = slug_base(user.email, user.display_name)
        owner = user.display_name or (user.email or "").split("@", 1)[0] or "My"
        name = f"{owner}'s organization"[:200]
        for attempt in range(8):
            slug = base if attempt == 0 else f"{base}-{secrets.token_hex(3)}"
            if await orgs.slug_taken(session, slug):
                continue
            try:
                return await write_unique(
                    session, partial(orgs.add_organization, session, slug, name), SlugTaken
                )
            except SlugTaken:
                continue  # taken by a concurrent signup: try another suffix
        async with session.begin_nested():
            return await orgs.add_organization(session, f"{base}-{secrets.token_hex(8)}", name)


def email_taken() -> Conflict:
    return Conflict("An account with this email already exists.")


class SlugTaken(Conflict):
    """A personal organization's slug was taken by a concurrent signup."""

    def __init__(self) -> None:
        super().__init__("This organization slug was taken concurrently.")
