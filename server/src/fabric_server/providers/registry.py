"""The registry of provider adapters and the routing that picks one for a request.

Routing (wire-spec §15, decisions in docs/adr/0009-provider-routing.md):

1. Capable: the provider does the modality; a pinned `model` keeps only the providers that
   serve it (`gpt-4o` → openai, `claude-*` → anthropic, `echo-1` → echo); a `tier` keeps
   only providers of that tier. Nothing capable → `ProviderInputError` (422).
2. Available: the organization has the credentials the provider needs. Nothing available →
   `ProviderNotConfigured` (400) naming the secret to set.
3. Ordered: healthy before failing, then cheapest estimated cost for this request, then the
   `echo` test provider after any real provider of equal price, then registration order.
4. Executed: the first healthy candidate; on a provider-side failure (rate limit, 5xx,
   timeout, refused credentials) the next one. Input errors never fall back, and `echo` is
   never a fallback for a real provider (echoed text is not an answer).
5. Streamed (`stream`): the same chain, but a provider may only be replaced until it has
   passed on its first piece of text; after that its failure ends the stream.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.versions import ACCESS, SECRETS, VersionedCache, Versions
from fabric_server.observability import calls
from fabric_server.providers.base import (
    NO_CREDENTIALS,
    STREAMING_MODALITIES,
    Credentials,
    Provider,
    ProviderInputError,
    ProviderRequest,
    ProviderResult,
    StreamItem,
    TextDelta,
    approximate_tokens,
    input_text,
    model_for,
    price_key_for,
)
from fabric_server.providers.credentials import CredentialResolver
from fabric_server.providers.errors import ProviderError, ProviderNotConfigured, ProviderUnavailable
from fabric_server.providers.health import CircuitBreaker, HealthChecks
from fabric_server.providers.http import UpstreamClient
from fabric_server.providers.pricing import FREE, PriceTable
from fabric_server.settings import ModelPrice

ECHO_ID = "echo"
# The request `estimated_cost_per_request` is quoted for: 1,000 tokens in, 500 out (text),
# 1,000 tokens or characters in, one minute of audio for models priced by the second, plus
# the price per request (one image).
REFERENCE_INPUT_TOKENS = 1000
REFERENCE_OUTPUT_TOKENS = 500
REFERENCE_AUDIO_SECONDS = 60


@dataclass(frozen=True)
class Candidate:
    provider: Provider
    model: str
    health_key: str
    estimated_cost_usd: float
    unavailable_reason: str | None


@dataclass(frozen=True)
class Execution:
    """A successful provider call: the priced result and how it went."""

    result: ProviderResult
    modality: str
    tier: str
    latency_ms: int
    failed_attempts: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class StreamOpened:
    """A streamed answer is coming from this provider and model (yielded before its first
    delta); routing will not fall back past it any more."""

    provider_id: str
    model: str
    tier: str
    started: float


StreamEvent = TextDelta | StreamOpened | Execution


class ProviderRegistry:
    def __init__(
        self,
        providers: Iterable[Provider],
        *,
        prices: PriceTable | None = None,
        breaker: CircuitBreaker | None = None,
        health_ttl: float = 60.0,
        credentials: CredentialResolver | None = None,
        http: UpstreamClient | None = None,
    ) -> None:
        self._providers = {p.id: p for p in providers}
        self.prices = prices or PriceTable()
        self.breaker = breaker or CircuitBreaker()
        self.health = HealthChecks(self.breaker, ttl=health_ttl)
        self.credential_resolver = credentials
        self.http = http
        self._credentials: VersionedCache[str, Credentials] | None = None

    def all(self) -> list[Provider]:
        return list(self._providers.values())

    def get(self, provider_id: str) -> Provider | None:
        return self._providers.get(provider_id)

    async def aclose(self) -> None:
        if self.http is not None:
            await self.http.aclose()

    def use_cache(self, versions: Versions) -> None:
        """Keep each organization's credentials in memory, exact thanks to the `secrets` and
        `access` version counters (who may send a key to a base URL depends on roles)."""
        self._credentials = VersionedCache(versions, SECRETS, ACCESS)

    async def credentials(self, session: AsyncSession, org_id: str | None) -> Credentials:
        """Everything the adapters may need for `org_id` (org secrets, then settings)."""
        resolver = self.credential_resolver
        if resolver is None:
            return NO_CREDENTIALS
        names = [name for p in self._providers.values() for name in p.credential_names]

        async def load() -> Credentials:
            assert resolver is not None
            return await resolver.resolve(session, org_id, names)

        if self._credentials is None:
            return await load()
        return await self._credentials.get(session, org_id or "", load)

    def route(self, request: ProviderRequest, tier: str | None = None) -> Provider:
        """The provider routing prefers for `request`, ignoring credentials and health."""
        return self.candidates(request, tier, NO_CREDENTIALS)[0].provider

    def candidates(
        self, request: ProviderRequest, tier: str | None, credentials: Credentials
    ) -> list[Candidate]:
        """Every capable provider, best first (available ones before unavailable ones)."""
        capable = self._capable(request, tier)
        ranked = [self._candidate(p, request, credentials) for p in capable]
        order = {p.id: index for index, p in enumerate(self._providers.values())}
        ranked.sort(
            key=lambda c: (
                c.unavailable_reason is not None,
                not self.breaker.allows(c.health_key),
                c.estimated_cost_usd,
                c.provider.id == ECHO_ID,
                order[c.provider.id],
            )
        )
        return ranked

    def plan(
        self, request: ProviderRequest, tier: str | None, credentials: Credentials
    ) -> list[Candidate]:
        """The available candidates, best first; `ProviderNotConfigured` when there are none."""
        ranked = self.candidates(request, tier, credentials)
        ready = [c for c in ranked if c.unavailable_reason is None]
        if not ready:
            reasons = "; or ".join(dict.fromkeys(c.unavailable_reason or "" for c in ranked))
            raise ProviderNotConfigured(
                f"No provider is configured for this {request.modality} request"
                f"{_pinned(request)}: {reasons}.",
                details={"providers": [c.provider.id for c in ranked]},
            )
        return ready

    async def execute(
        self, request: ProviderRequest, tier: str | None, credentials: Credentials
    ) -> Execution:
        """Run the request on the best candidate, falling back as the module doc says."""
        failures: list[ProviderError] = []
        for candidate in self._chain(request, tier, credentials):
            started = time.perf_counter()
            try:
                result = await candidate.provider.execute(
                    dataclasses.replace(request, model=candidate.model), credentials
                )
            except ProviderError as exc:
                self._failed(candidate, exc, failures, started)
                continue
            self.breaker.record_success(candidate.health_key)
            return self._execution(request, candidate, result, started, failures)
        raise _first(failures)

    async def stream(
        self, request: ProviderRequest, tier: str | None, credentials: Credentials
    ) -> AsyncIterator[StreamEvent]:
        """Like `execute`, as it happens: `StreamOpened`, text deltas, then the `Execution`.

        Providers (or modalities) that cannot stream answer whole: one delta with the full
        text, for text. A failure after the first delta is raised as it is.
        """
        failures: list[ProviderError] = []
        for candidate in self._chain(request, tier, credentials):
            started = time.perf_counter()
            opened = False
            pinned = dataclasses.replace(request, model=candidate.model)
            result: ProviderResult | None = None
            try:
                async for item in self._items(candidate.provider, pinned, credentials):
                    if isinstance(item, ProviderResult):
                        result = item
                        continue
                    if not opened:
                        opened = True
                        yield StreamOpened(
                            candidate.provider.id, candidate.model, candidate.provider.tier, started
                        )
                    yield item
            except ProviderError as exc:
                if opened:
                    _observe_failure(candidate, exc, started)
                    if exc.transient:
                        self.breaker.record_failure(candidate.health_key)
                    raise
                self._failed(candidate, exc, failures, started)
                continue
            if result is None:
                raise RuntimeError(f"{candidate.provider.id} ended a stream without a result")
            if not opened:
                yield StreamOpened(
                    candidate.provider.id, candidate.model, candidate.provider.tier, started
                )
            self.breaker.record_success(candidate.health_key)
            yield self._execution(request, candidate, result, started, failures)
            return
        raise _first(failures)

    def partial(self, request: ProviderRequest, opened: StreamOpened, text: str) -> Execution:
        """What an interrupted stream used, as far as it got (tokens approximated)."""
        result = ProviderResult(
            provider_id=opened.provider_id,
            model=opened.model,
            output={"text": text, "content": text, "finish_reason": "interrupted"},
            input_tokens=approximate_tokens(input_text(request.input)),
            output_tokens=approximate_tokens(text),
        )
        execution = Execution(
            result=self._priced(
                result,
                self._providers[opened.provider_id],
                dataclasses.replace(request, model=opened.model),
            ),
            modality=request.modality,
            tier=opened.tier,
            latency_ms=int((time.perf_counter() - opened.started) * 1000),
        )
        _observe(execution, "interrupted")
        return execution

    def _chain(
        self, request: ProviderRequest, tier: str | None, credentials: Credentials
    ) -> list[Candidate]:
        """The candidates to try in order: healthy, available, echo never as a fallback."""
        ready = self.plan(request, tier, credentials)
        healthy = [c for c in ready if self.breaker.allows(c.health_key)]
        if not healthy:
            wait = min(self.breaker.retry_in(c.health_key) for c in ready)
            raise ProviderUnavailable(
                f"{', '.join(c.provider.id for c in ready)} failed repeatedly and are paused; "
                f"retry in {max(1, round(wait))} s.",
                details={"retry_in_seconds": round(wait, 1)},
            )
        return healthy[:1] + [c for c in healthy[1:] if c.provider.id != ECHO_ID]

    def _failed(
        self,
        candidate: Candidate,
        exc: ProviderError,
        failures: list[ProviderError],
        started: float,
    ) -> None:
        """Note a failed attempt; re-raise it when routing may not try the next provider."""
        _observe_failure(candidate, exc, started)
        if exc.transient:
            self.breaker.record_failure(candidate.health_key)
        if not exc.fallback:
            raise exc
        failures.append(exc)

    async def _items(
        self, provider: Provider, request: ProviderRequest, credentials: Credentials
    ) -> AsyncIterator[StreamItem]:
        if provider.supports_streaming and request.modality in STREAMING_MODALITIES:
            async for item in provider.stream(request, credentials):
                yield item
            return
        result = await provider.execute(request, credentials)
        text = result.output.get("text")
        if request.modality in STREAMING_MODALITIES and isinstance(text, str) and text:
            yield TextDelta(text)
        yield result

    def _execution(
        self,
        request: ProviderRequest,
        candidate: Candidate,
        result: ProviderResult,
        started: float,
        failures: list[ProviderError],
    ) -> Execution:
        pinned = dataclasses.replace(request, model=candidate.model)
        execution = Execution(
            result=self._priced(result, candidate.provider, pinned),
            modality=request.modality,
            tier=candidate.provider.tier,
            latency_ms=int((time.perf_counter() - started) * 1000),
            failed_attempts=tuple(_attempt(e) for e in failures),
        )
        _observe(execution, calls.OK)
        return execution

    def estimate(
        self, request: ProviderRequest, tier: str | None, credentials: Credentials
    ) -> dict[str, Any]:
        """What `execute` would most likely do and cost; works without credentials too."""
        best = self.candidates(request, tier, credentials)[0]
        pinned = dataclasses.replace(request, model=best.model)
        tokens_in, tokens_out = best.provider.estimate_tokens(pinned)
        return {
            "provider_id": best.provider.id,
            "model": best.model,
            "modality": request.modality,
            "tier": best.provider.tier,
            "input_tokens_estimate": tokens_in,
            "output_tokens_estimate": tokens_out,
            "estimated_cost_usd": self.prices.cost(
                price_key_for(best.provider, pinned), tokens_in, tokens_out
            ),
            "currency": "USD",
            "available": best.unavailable_reason is None,
        }

    def catalogue(self, credentials: Credentials) -> list[dict[str, Any]]:
        """One entry per provider: what it offers and whether this organization can use it."""
        return [self._describe(p, credentials) for p in self._providers.values()]

    async def check_health(self, credentials: Credentials) -> None:
        """Run the cheap health check of every available provider (cached per endpoint)."""
        for provider in self._providers.values():
            if provider.unavailable_reason(credentials) is None:
                key = _health_key(provider, credentials)

                async def probe(provider: Provider = provider) -> None:
                    await provider.check_health(credentials)

                await self.health.check(key, probe)

    def _capable(self, request: ProviderRequest, tier: str | None) -> list[Provider]:
        found = [p for p in self._providers.values() if request.modality in p.modalities]
        if not found:
            raise ProviderInputError(f"no provider supports modality {request.modality!r}")
        if request.model:
            found = [p for p in found if p.serves(request.model, request.modality)]
            if not found:
                raise ProviderInputError(
                    f"no provider offers model {request.model!r} for {request.modality}; "
                    f"known models: {self._models_for(request.modality)}"
                )
        if tier:
            tiered = [p for p in found if p.tier == tier]
            if not tiered:
                raise ProviderInputError(
                    f"no {tier} provider serves this {request.modality} request"
                    f"{_pinned(request)} (available tiers: "
                    f"{sorted({p.tier for p in found})})"
                )
            found = tiered
        return found

    def _candidate(
        self, provider: Provider, request: ProviderRequest, credentials: Credentials
    ) -> Candidate:
        model = request.model or model_for(provider, request)
        pinned = dataclasses.replace(request, model=model)
        tokens_in, tokens_out = provider.estimate_tokens(pinned)
        return Candidate(
            provider=provider,
            model=model,
            health_key=_health_key(provider, credentials),
            estimated_cost_usd=self.prices.cost(
                price_key_for(provider, pinned), tokens_in, tokens_out
            ),
            unavailable_reason=provider.unavailable_reason(credentials),
        )

    def _priced(
        self, result: ProviderResult, provider: Provider, request: ProviderRequest
    ) -> ProviderResult:
        key = price_key_for(provider, dataclasses.replace(request, model=result.model))
        cost = self.prices.cost(key, result.input_tokens, result.output_tokens)
        return dataclasses.replace(result, cost_usd=cost)

    def _describe(self, provider: Provider, credentials: Credentials) -> dict[str, Any]:
        key = _health_key(provider, credentials)
        report = self.health.cached(key)
        healthy = self.breaker.allows(key) and (report is None or report.healthy)
        capabilities = []
        for model in provider.models():
            for modality in provider.modalities:
                if not provider.serves(model, modality):
                    continue
                price = self.prices.price(model) or FREE
                units_in, units_out = _reference_units(price, modality)
                capabilities.append(
                    {
                        "modality": modality,
                        "model": model,
                        "supports_streaming": provider.supports_streaming
                        and modality in STREAMING_MODALITIES,
                        "estimated_cost_per_request": self.prices.cost(model, units_in, units_out),
                        "input_cost_per_million_tokens": price.input,
                        "output_cost_per_million_tokens": price.output,
                        "cost_per_request": price.per_request,
                        "price_unit": price.unit,
                        "default": provider.default_model(modality) == model,
                    }
                )
        reason = provider.unavailable_reason(credentials)
        return {
            "id": provider.id,
            "provider_id": provider.id,
            "name": provider.name,
            "tier": provider.tier,
            "healthy": healthy,
            "health_detail": None if report is None else report.detail,
            "available": reason is None,
            "reason": reason,
            "modalities": list(provider.modalities),
            "supports_streaming": provider.supports_streaming,
            "models": list(provider.models()),
            "default_models": {m: provider.default_model(m) for m in provider.modalities},
            "capabilities": capabilities,
        }

    def _models_for(self, modality: str) -> list[str]:
        return sorted(
            {
                m
                for p in self._providers.values()
                if modality in p.modalities
                for m in p.models()
                if p.serves(m, modality)
            }
        )


def _reference_units(price: ModelPrice, modality: str) -> tuple[int, int]:
    if price.unit == "seconds":
        return REFERENCE_AUDIO_SECONDS, 0
    return REFERENCE_INPUT_TOKENS, REFERENCE_OUTPUT_TOKENS if modality == "text" else 0


def _health_key(provider: Provider, credentials: Credentials) -> str:
    return f"{provider.id} {provider.endpoint(credentials)}"


def _pinned(request: ProviderRequest) -> str:
    return f" with model {request.model!r}" if request.model else ""


def _first(failures: list[ProviderError]) -> ProviderError:
    """The error to report when every candidate failed: the first, listing all attempts."""
    first = failures[0]
    if len(failures) > 1:
        first.details = {**(first.details or {}), "attempts": [_attempt(e) for e in failures]}
    return first


def _attempt(error: ProviderError) -> dict[str, Any]:
    return {"provider_id": error.provider_id, "code": error.code, "message": error.message}


def _observe(execution: Execution, outcome: str) -> None:
    result = execution.result
    calls.provider_call(
        result.provider_id,
        result.model,
        outcome,
        execution.latency_ms / 1000,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cost_usd=result.cost_usd,
    )


def _observe_failure(candidate: Candidate, exc: ProviderError, started: float) -> None:
    seconds = time.perf_counter() - started
    calls.provider_call(candidate.provider.id, candidate.model, exc.code, seconds)
