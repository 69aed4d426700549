"""Access: permission checks, explicit permission grants, and API keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union, cast

from ._base import encode_path, query
from ._core import AsyncClientCore, SyncClientCore
from .types import ApiKey, CreatedApiKey, PermissionCheckResult, PermissionGrant

KEYS_PATH = "/v1/api-keys"
GRANTS_PATH = "/v1/permissions"
Expiry = Union[str, dt.datetime, None]


def _check_body(
    action: str,
    resource_type: Optional[str],
    resource_id: Optional[str],
    organization_id: Optional[str],
) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action}
    optional = {
        "resource_type": resource_type,
        "resource_id": resource_id,
        "organization_id": organization_id,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


def _batch_body(checks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"checks": [dict(check) for check in checks]}


def _allowed(result: Any) -> bool:
    return isinstance(result, dict) and bool(result.get("allowed"))


def _key_org(org_id: Optional[str], organization_id: Optional[str]) -> Optional[str]:
    if org_id is not None and organization_id is not None and org_id != organization_id:
        raise ValueError("org_id and organization_id name two organizations: pass one of them")
    return org_id if org_id is not None else organization_id


def _key_body(
    name: str,
    organization_id: Optional[str],
    scopes: Optional[Sequence[str]],
    description: Optional[str],
    expires_in_days: Optional[int],
    expires_at: Expiry,
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    optional = {
        # None: the server picks the caller's organization (an API key's own).
        "organization_id": organization_id,
        "scopes": list(scopes) if scopes is not None else None,
        "description": description,
        "expires_in_days": expires_in_days,
        "expires_at": expires_at.isoformat() if isinstance(expires_at, dt.datetime) else expires_at,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


def _grant_body(
    org_id: str,
    principal_id: str,
    action: str,
    effect: str,
    team_id: Optional[str],
    resource_type: Optional[str],
    resource_id: Optional[str],
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "organization_id": org_id,
        "principal_id": principal_id,
        "action": action,
        "effect": effect,
    }
    optional = {"team_id": team_id, "resource_type": resource_type, "resource_id": resource_id}
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


class AccessMethods(SyncClientCore):
    # --- authorization checks ------------------------------------------------------------

    def check_permission(
        self,
        action: str,
        resource_type: Optional[str] = None,
        resource_id: Optional[str] = None,
        *,
        organization_id: Optional[str] = None,
    ) -> bool:
        """Whether the caller may do ``action`` (e.g. ``"workflow.edit"``) on the resource.

        Without a resource the question is about the organization: ``organization_id``, else
        the caller's own (an API key's, or the default one). Resources the caller cannot see
        are simply not allowed.
        """
        body = _check_body(action, resource_type, resource_id, organization_id)
        return _allowed(self._request("POST", "/v1/authz/check", body=body))

    def check_permissions(self, checks: Sequence[Mapping[str, Any]]) -> list[PermissionCheckResult]:
        """Several checks at once (each like `check_permission`'s arguments, as a dict);
        one result per check, in order, each with ``allowed`` and ``reason``."""
        result = self._request("POST", "/v1/authz/check-batch", body=_batch_body(checks))
        return cast("list[PermissionCheckResult]", result)

    # --- permission grants ---------------------------------------------------------------

    def create_permission_grant(
        self,
        org_id: str,
        principal_id: str,
        action: str,
        effect: str = "allow",
        *,
        team_id: Optional[str] = None,
        resource_type: Optional[str] = None,
        resource_id: Optional[str] = None,
    ) -> PermissionGrant:
        """Allow (or, with ``effect="deny"``, forbid) ``action`` to a principal in the
        organization, beyond or against its role; narrowed to a team or to one resource when
        given. A deny wins over everything. Needs ``permission.manage``."""
        body = _grant_body(
            org_id, principal_id, action, effect, team_id, resource_type, resource_id
        )
        return cast(PermissionGrant, self._request("POST", GRANTS_PATH, body=body))

    def list_permission_grants(
        self, org_id: str, *, principal_id: Optional[str] = None
    ) -> list[PermissionGrant]:
        """The organization's explicit grants (of one principal, if given)."""
        params = query(organization_id=org_id, principal_id=principal_id)
        return cast("list[PermissionGrant]", self._request("GET", GRANTS_PATH, params=params))

    def delete_permission_grant(self, grant_id: str) -> None:
        """Remove a grant; the principal is left with what its role allows."""
        self._request("DELETE", encode_path(GRANTS_PATH + "/{}", grant_id))

    # --- API keys ------------------------------------------------------------------------

    def create_api_key(
        self,
        name: str,
        org_id: Optional[str] = None,
        scopes: Optional[Sequence[str]] = None,
        *,
        organization_id: Optional[str] = None,
        description: Optional[str] = None,
        expires_in_days: Optional[int] = None,
        expires_at: Expiry = None,
    ) -> CreatedApiKey:
        """Create an API key for the organization (``org_id``, or ``organization_id=``; else
        the caller's own); ``key`` in the answer is its secret, shown this once. ``scopes``
        (actions) narrow what it may do; none means the creator's role. It expires after
        ``expires_in_days`` or at ``expires_at``, if given."""
        org = _key_org(org_id, organization_id)
        body = _key_body(name, org, scopes, description, expires_in_days, expires_at)
        return cast(CreatedApiKey, self._request("POST", KEYS_PATH, body=body))

    def list_api_keys(self, *, organization_id: Optional[str] = None) -> list[ApiKey]:
        """The keys of every organization where the caller manages keys (or of one), without
        their secrets."""
        params = query(organization_id=organization_id)
        return cast("list[ApiKey]", self._request("GET", KEYS_PATH, params=params))

    def get_api_key(self, key_id: str) -> ApiKey:
        """The key ``key_id`` (never its secret), with its ``last_used_at``."""
        return cast(ApiKey, self._request("GET", encode_path(KEYS_PATH + "/{}", key_id)))

    def rotate_api_key(self, key_id: str) -> CreatedApiKey:
        """Give the key a new secret (returned once); the old secret stops working at once."""
        path = encode_path(KEYS_PATH + "/{}/rotate", key_id)
        return cast(CreatedApiKey, self._request("POST", path))

    def disable_api_key(self, key_id: str) -> ApiKey:
        """Disable the key: calls made with it are refused from now on."""
        path = encode_path(KEYS_PATH + "/{}/disable", key_id)
        return cast(ApiKey, self._request("POST", path))

    def delete_api_key(self, key_id: str) -> None:
        """Delete the key for good."""
        self._request("DELETE", encode_path(KEYS_PATH + "/{}", key_id))


class AsyncAccessMethods(AsyncClientCore):
    async def check_permission(
        self,
        action: str,
        resource_type: Optional[str] = None,
        resource_id: Optional[str] = None,
        *,
        organization_id: Optional[str] = None,
    ) -> bool:
        """Whether the caller may do ``action`` on the resource; see `FabricClient`."""
        body = _check_body(action, resource_type, resource_id, organization_id)
        return _allowed(await self._request("POST", "/v1/authz/check", body=body))

    async def check_permissions(
        self, checks: Sequence[Mapping[str, Any]]
    ) -> list[PermissionCheckResult]:
        """Several checks at once; one result per check, in order."""
        result = await self._request("POST", "/v1/authz/check-batch", body=_batch_body(checks))
        return cast("list[PermissionCheckResult]", result)

    async def create_permission_grant(
        self,
        org_id: str,
        principal_id: str,
        action: str,
        effect: str = "allow",
        *,
        team_id: Optional[str] = None,
        resource_type: Optional[str] = None,
        resource_id: Optional[str] = None,
    ) -> PermissionGrant:
        """Allow or deny ``action`` to a principal; see `FabricClient`."""
        body = _grant_body(
            org_id, principal_id, action, effect, team_id, resource_type, resource_id
        )
        return cast(PermissionGrant, await self._request("POST", GRANTS_PATH, body=body))

    async def list_permission_grants(
        self, org_id: str, *, principal_id: Optional[str] = None
    ) -> list[PermissionGrant]:
        """The organization's explicit grants (of one principal, if given)."""
        params = query(organization_id=org_id, principal_id=principal_id)
        grants = await self._request("GET", GRANTS_PATH, params=params)
        return cast("list[PermissionGrant]", grants)

    async def delete_permission_grant(self, grant_id: str) -> None:
        """Remove a grant."""
        await self._request("DELETE", encode_path(GRANTS_PATH + "/{}", grant_id))

    async def create_api_key(
        self,
        name: str,
        org_id: Optional[str] = None,
        scopes: Optional[Sequence[str]] = None,
        *,
        organization_id: Optional[str] = None,
        description: Optional[str] = None,
        expires_in_days: Optional[int] = None,
        expires_at: Expiry = None,
    ) -> CreatedApiKey:
        """Create an API key; ``key`` in the answer is its secret, shown this once."""
        org = _key_org(org_id, organization_id)
        body = _key_body(name, org, scopes, description, expires_in_days, expires_at)
        return cast(CreatedApiKey, await self._request("POST", KEYS_PATH, body=body))

    async def list_api_keys(self, *, organization_id: Optional[str] = None) -> list[ApiKey]:
        """The keys of every organization where the caller manages keys (or of one)."""
        params = query(organization_id=organization_id)
        return cast("list[ApiKey]", await self._request("GET", KEYS_PATH, params=params))

    async def get_api_key(self, key_id: str) -> ApiKey:
        """The key ``key_id`` (never its secret)."""
        return cast(ApiKey, await self._request("GET", encode_path(KEYS_PATH + "/{}", key_id)))

    async def rotate_api_key(self, key_id: str) -> CreatedApiKey:
        """Give the key a new secret (returned once); the old one stops working at once."""
        path = encode_path(KEYS_PATH + "/{}/rotate", key_id)
        return cast(CreatedApiKey, await self._request("POST", path))

    async def disable_api_key(self, key_id: str) -> ApiKey:
        """Disable the key."""
        path = encode_path(KEYS_PATH + "/{}/disable", key_id)
        return cast(ApiKey, await self._request("POST", path))

    async def delete_api_key(self, key_id: str) -> None:
        """Delete the key for good."""
        await self._request("DELETE", encode_path(KEYS_PATH + "/{}", key_id))
