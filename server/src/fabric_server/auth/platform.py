"""Platform administrators: the operators who curate what every organization shares.

They are not a role in any organization. The server lists them by account email in
`FABRIC_PLATFORM_ADMINS`; a signed-in user whose email is listed and verified is one. API
keys act for their organization, never for the platform, so a key is never one, whoever made
it. In dev mode the dev owner is one as well.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.auth import repository as users
from fabric_server.auth.models import User
from fabric_server.auth.passwords import normalize_email
from fabric_server.errors import ValidationFailed
from fabric_server.settings import DEV_OWNER_ID, Settings

HOW_TO_BECOME_ONE = (
    "platform administrators are the signed-in users whose verified email the server lists "
    "in FABRIC_PLATFORM_ADMINS"
)


class PlatformAdmins:
    def __init__(self, emails: Iterable[str], *, dev_mode: bool) -> None:
        self.emails = frozenset(_admin_email(raw) for raw in emails if raw.strip())
        self.dev_mode = dev_mode

    @classmethod
    def from_settings(cls, settings: Settings) -> PlatformAdmins:
        """Read `FABRIC_PLATFORM_ADMINS` (comma-separated emails); ValueError names a bad one."""
        return cls(settings.platform_admins.split(","), dev_mode=settings.is_dev)

    def includes(self, principal: Principal, user: User | None) -> bool:
        """Whether `principal` is a platform administrator, `user` being its account (None
        when it has none or it was not read)."""
        if self.dev_mode and principal.id == DEV_OWNER_ID and principal.kind != "api_key":
            return True
        return (
            principal.kind == "user"
            and user is not None
            and user.id == principal.id
            and user.email_verified
            and user.email is not None
            and user.email.lower() in self.emails
        )

    async def check(self, session: AsyncSession, principal: Principal) -> bool:
        """Like `includes`, reading the caller's account only when its email can matter."""
        if principal.kind != "user" or not self.emails:
            return self.includes(principal, None)
        return self.includes(principal, await users.get_user(session, principal.id))


def _admin_email(raw: str) -> str:
    """An address as accounts store it (so that case and spacing do not matter)."""
    try:
        return normalize_email(raw)
    except ValidationFailed as exc:
        raise ValueError(f"FABRIC_PLATFORM_ADMINS: {raw.strip()!r}: {exc.message}") from None
