"""Providers: the catalogue, running one request directly, and estimating its cost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, List, Optional, cast

from ._base import QueryValue, query
from ._core import AsyncClientCore, SyncClientCore
from ._provider_stream import AsyncProviderStream, ProviderStream
from .types import CostEstimate, ProviderExecution, ProviderInfo

PROVIDERS_PATH = "/v1/providers"
EXECUTE_PATH = "/v1/providers/execute"
EXECUTE_STREAM_PATH = "/v1/providers/execute/stream"
ESTIMATE_PATH = "/v1/providers/estimate"


def _list_params(organization_id: Optional[str], check: bool) -> dict[str, QueryValue]:
    # The flag is sent only when asked for: the plain listing stays the reference call.
    return query(organization_id=organization_id, check=True if check else None)


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
    def providers(
        self, *, organization_id: Optional[str] = None, check: bool = False
    ) -> List[ProviderInfo]:
        """Every provider with its tier, models, prices, health, and whether it is available
        to the organization (``available``, else ``reason`` says which secret to set).
        ``check=True`` runs each available provider's health check first (cached briefly)."""
        params = _list_params(organization_id, check)
        return cast(List[ProviderInfo], self._request("GET", PROVIDERS_PATH, params=params))

    def list_providers(
        self, *, organization_id: Optional[str] = None, check: bool = False
    ) -> List[ProviderInfo]:
        """The same as `providers`."""
        return self.providers(organization_id=organization_id, check=check)

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

    def execute_provider_stream(
        self,
        modality: str,
        input: Mapping[str, Any],
        model: Optional[str] = None,
        *,
        params: Optional[Mapping[str, Any]] = None,
        tier: Optional[str] = None,
        organization_id: Optional[str] = None,
    ) -> ProviderStream:
        """Run one request and iterate over its text as it is written.

        ``for delta in stream`` yields ``{"index", "text"}``; afterwards ``stream.result``
        is the same execution `execute_provider` returns (output, usage, cost). Refusals
        before the answer starts raise as usual; a failure mid-answer raises the typed error
        then. Routing falls back to another provider only until the first text arrives.
        """
        body = _body(modality, input, model, params, tier, organization_id)
        return ProviderStream(lambda: self._open_post_stream(EXECUTE_STREAM_PATH, body))

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
    async def providers(
        self, *, organization_id: Optional[str] = None, check: bool = False
    ) -> List[ProviderInfo]:
        """Every provider with its availability for the organization; see `FabricClient`."""
        params = _list_params(organization_id, check)
        return cast(List[ProviderInfo], await self._request("GET", PROVIDERS_PATH, params=params))

    async def list_providers(
        self, *, organization_id: Optional[str] = None, check: bool = False
    ) -> List[ProviderInfo]:
        """The same as `providers`."""
        return await self.providers(organization_id=organization_id, check=check)

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

    def execute_provider_stream(
        self,
        modality: str,
        input: Mapping[str, Any],
        model: Optional[str] = None,
        *,
        params: Optional[Mapping[str, Any]] = None,
        tier: Optional[str] = None,
        organization_id: Optional[str] = None,
    ) -> AsyncProviderStream:
        """``async for delta in stream`` over the answer as it is written; ``await`` it
        first to send the request at once. See `FabricClient.execute_provider_stream`."""
        body = _body(modality, input, model, params, tier, organization_id)
        return AsyncProviderStream(lambda: self._open_post_stream(EXECUTE_STREAM_PATH, body))

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
