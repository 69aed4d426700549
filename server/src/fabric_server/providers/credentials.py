"""Where provider credentials come from: the organization's secrets, then server settings.

A `CredentialSource` answers one secret by name for one organization. The organization's
secret store has exactly this shape (`get(session, org_id, name)`), so it plugs in as the
`org_secrets` source of `CredentialResolver` without an adapter. Values are only ever held
in `Credentials`, whose `repr` hides them; nothing here logs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.providers.base import Credentials
from fabric_server.settings import Settings

# Endpoint secrets and the key secret each one receives.
ENDPOINT_KEYS = {"OPENAI_BASE_URL": "OPENAI_API_KEY", "ANTHROPIC_BASE_URL": "ANTHROPIC_API_KEY"}


class CredentialSource(Protocol):
    async def get(self, session: AsyncSession, org_id: str, name: str) -> str | None: ...


@runtime_checkable
class BatchCredentialSource(Protocol):
    """A source that can answer several names in one round trip (the secret store)."""

    async def get_many(
        self, session: AsyncSession, org_id: str, names: Collection[str]
    ) -> dict[str, str]: ...


@runtime_checkable
class EndpointApprovals(Protocol):
    """A source that knows whether an organization's key may go to its chosen endpoint."""

    async def endpoint_approved(
        self, session: AsyncSession, org_id: str, endpoint_name: str, key_name: str
    ) -> bool: ...


class SettingsCredentials:
    """Server-wide credentials from `FABRIC_*` settings, the same for every organization."""

    def __init__(self, settings: Settings) -> None:
        values = {
            "OPENAI_API_KEY": settings.openai_api_key,
            "ANTHROPIC_API_KEY": settings.anthropic_api_key,
        }
        self._values = {
            name: secret.get_secret_value() for name, secret in values.items() if secret
        }
        if settings.openai_base_url:
            self._values["OPENAI_BASE_URL"] = settings.openai_base_url

    async def get(self, session: AsyncSession, org_id: str, name: str) -> str | None:
        return self._values.get(name)

    def lookup(self, name: str) -> str | None:
        return self._values.get(name)


class CredentialResolver:
    """Collects the credentials of one organization: its own secrets win over settings.

    `org_secrets` is the organization secret store. Until it is wired in (see
    `fabric_server.services`), only server settings supply credentials.
    """

    def __init__(
        self, server: SettingsCredentials, org_secrets: CredentialSource | None = None
    ) -> None:
        self.server = server
        self.org_secrets = org_secrets

    async def resolve(
        self, session: AsyncSession, org_id: str | None, names: Iterable[str]
    ) -> Credentials:
        wanted = sorted(set(names))
        own: dict[str, str] = {}
        if self.org_secrets is not None and org_id is not None:
            if isinstance(self.org_secrets, BatchCredentialSource):
                own = await self.org_secrets.get_many(session, org_id, wanted)
            else:
                for name in wanted:
                    value = await self.org_secrets.get(session, org_id, name)
                    if value:
                        own[name] = value
        values: dict[str, str] = {}
        from_org: set[str] = set()
        for name in wanted:
            value = own.get(name)
            if value:
                from_org.add(name)
            else:
                value = self.server.lookup(name)
            if value:
                values[name] = value
        unapproved = await self._unapproved(session, org_id, from_org)
        return Credentials(values, frozenset(from_org), unapproved)

    async def _unapproved(
        self, session: AsyncSession, org_id: str | None, from_org: set[str]
    ) -> frozenset[str]:
        """Endpoint secrets whose key (also the organization's) may not be sent there."""
        if org_id is None or not isinstance(self.org_secrets, EndpointApprovals):
            return frozenset()
        refused = set()
        for endpoint, key in ENDPOINT_KEYS.items():
            both = endpoint in from_org and key in from_org
            if both and not await self.org_secrets.endpoint_approved(
                session, org_id, endpoint, key
            ):
                refused.add(endpoint)
        return frozenset(refused)
