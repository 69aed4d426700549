"""Every new account's own organization, created together with the user (its owner).

In dev mode the user also joins the default organization as an admin, so calls that default
to it (as the SDK's do) work with the user's own token.
"""

from __future__ import annotations

import re
import secrets
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.auth.models import User
from fabric_server.db.unique import write_unique
from fabric_server.errors import Conflict
from fabric_server.orgs import repository
from fabric_server.orgs.models import Organization
from fabric_server.settings import DEFAULT_ORGANIZATION_ID

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slug_base(email: str | None, display_name: str | None) -> str:
    """A readable slug stem from the email's local part (or the name): `ada.l@x.io` → `ada-l`."""
    source = (email or "").split("@", 1)[0] or display_name or ""
    slug = _NOT_SLUG.sub("-", source.lower()).strip("-")[:40].strip("-")
    return slug or "user"


class PersonalOrganizations:
    def __init__(self, *, dev_mode: bool) -> None:
        self.dev_mode = dev_mode

    async def create(self, session: AsyncSession, user: User) -> str:
        """The new user's organization (the user its owner); answers its id."""
        org = await self._organization(session, user)
        await repository.add_member(session, org.id, user.id, "owner")
        if self.dev_mode and await repository.exists(session, DEFAULT_ORGANIZATION_ID):
            await repository.add_member(session, DEFAULT_ORGANIZATION_ID, user.id, "admin")
        return org.id

    async def _organization(self, session: AsyncSession, user: User) -> Organization:
        base = slug_base(user.email, user.display_name)
        owner = user.display_name or (user.email or "").split("@", 1)[0] or "My"
        name = f"{owner}'s organization"[:200]
        for attempt in range(8):
            slug = base if attempt == 0 else f"{base}-{secrets.token_hex(3)}"
            if await repository.slug_taken(session, slug):
                continue
            try:
                return await write_unique(
                    session, partial(repository.add_organization, session, slug, name), SlugTaken
                )
            except SlugTaken:
                continue  # taken by a concurrent signup: try another suffix
        async with session.begin_nested():
            return await repository.add_organization(
                session, f"{base}-{secrets.token_hex(8)}", name
            )


class SlugTaken(Conflict):
    """A personal organization's slug was taken by a concurrent signup."""

    def __init__(self) -> None:
        super().__init__("This organization slug was taken concurrently.")
