"""Providers: the catalogue, running one request directly, and estimating its cost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, List, Optional, cast

from ._base import query
from ._core import AsyncClientCore, SyncClientCore
from .types import CostEstimate, ProviderExecution, ProviderInfo

PROVIDERS_PATH = "/v1/providers"
EXECUTE_PATH = "/v1/providers/execute"
ESTIMATE_PATH = "/v1/providers/estimate"


def _body(
    modality: str,
    input: Mapping[str, Any],
    model: Optional[str],
    params: Optional[Mapping[str, Any]],
    tier: Optional[str],
    organization_id: Optional[str],
) -> dict[str, Any]:
    body: dict[str, Any] = {"modality": modality, "input": dict(input)}
    optional = {
        "model": model,
        "params": dict(params) if params is not None else None,
        "tier": tier,
        # Without it the server uses the organization the credentials belong to.
        "organization_id": organization_id,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


class ProvidersMethods(SyncClientCore):
    def providers(self, *, organization_id: Optional[str] = None) -> List[ProviderInfo]:
        """Every provider with its tier, models, prices, health, and whether it is available
        to the organization (``available``, else ``reason`` says which secret to set)."""
        params = query(organization_id=organization_id)
        return cast(List[ProviderInfo], self._request("GET", PROVIDERS_PATH, params=params))

    def list_providers(self, *, organization_id: Optional[str] = None) -> List[ProviderInfo]:
        """The same as `providers`."""
        return self.providers(organization_id=organization_id)

    def execute_provider(
        self,
        modality: str,
        input: Mapping[str, Any],
        model: Optional[str] = None,
        *,
        params: Optional[Mapping[str, Any]] = None,
        tier: Optional[str] = None,
        organization_id: Optional[str] = None,
    ) -> ProviderExecution:
        """Run one request now and return ``{provider_id, model, output, usage, ...}``.

        ``model`` pins the provider that serves it (``"gpt-4o"``, ``"claude-…"``); ``tier``
        (``"basic"``/``"premium"``) restricts routing to that tier. The call is billed by the
        provider, so it is never retried automatically.
        """
        body = _body(modality, input, model, params, tier, organization_id)
        return cast(ProviderExecution, self._request("POST", EXECUTE_PATH, body=body))

    def estimate_cost(
        self,
        modality: str,
        input: Mapping[str, Any],
        model: Optional[str] = None,
        *,
        params: Optional[Mapping[str, Any]] = None,
        tier: Optional[str] = None,
        organization_id: Optional[str] = None,
    ) -> CostEstimate:
        """What the request would cost, in USD, and on which provider and model."""
        body = _body(modality, input, model, params, tier, organization_id)
        return cast(CostEstimate, self._request("POST", ESTIMATE_PATH, body=body))


class AsyncProvidersMethods(AsyncClientCore):
    async def providers(self, *, organization_id: Optional[str] = None) -> List[ProviderInfo]:
        """Every provider with its availability for the organization; see `FabricClient`."""
        params = query(organization_id=organization_id)
        return cast(List[ProviderInfo], await self._request("GET", PROVIDERS_PATH, params=params))

    async def list_providers(self, *, organization_id: Optional[str] = None) -> List[ProviderInfo]:
        """The same as `providers`."""
        return await self.providers(organization_id=organization_id)

    async def execute_provider(
        self,
        modality: str,
        input: Mapping[str, Any],
        model: Optional[str] = None,
        *,
        params: Optional[Mapping[str, Any]] = None,
        tier: Optional[str] = None,
        organization_id: Optional[str] = None,
    ) -> ProviderExecution:
        """Run one request now (never retried automatically); see `FabricClient`."""
        body = _body(modality, input, model, params, tier, organization_id)
        return cast(ProviderExecution, await self._request("POST", EXECUTE_PATH, body=body))

    async def estimate_cost(
        self,
        modality: str,
        input: Mapping[str, Any],
        model: Optional[str] = None,
        *,
        params: Optional[Mapping[str, Any]] = None,
        tier: Optional[str] = None,
        organization_id: Optional[str] = None,
    ) -> CostEstimate:
        """What the request would cost, in USD, and on which provider and model."""
        body = _body(modality, input, model, params, tier, organization_id)
        return cast(CostEstimate, await self._request("POST", ESTIMATE_PATH, body=body))
