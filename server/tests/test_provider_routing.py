"""Routing: capability, pinning, tiers, price order, availability, fallback, circuit breaking."""

from __future__ import annotations

from collections import deque

import pytest

from fabric_server.providers.base import (
    NO_CREDENTIALS,
    Credentials,
    ProviderInputError,
    ProviderRequest,
    ProviderResult,
)
from fabric_server.providers.echo import EchoProvider
from fabric_server.providers.errors import (
    ProviderAuthFailed,
    ProviderError,
    ProviderNotConfigured,
    ProviderRejected,
    ProviderUnavailable,
    UpstreamError,
)
from fabric_server.providers.health import CircuitBreaker
from fabric_server.providers.pricing import PriceTable
from fabric_server.providers.registry import ProviderRegistry
from fabric_server.settings import ModelPrice


class Scripted:
    """A provider double: answers from a queue of outcomes (a result text or an error)."""

    supports_streaming = False

    def __init__(
        self,
        provider_id: str,
        *,
        tier: str = "premium",
        models: tuple[str, ...] = (),
        modalities: tuple[str, ...] = ("text",),
        secret: str | None = None,
    ) -> None:
        self.id = provider_id
        self.name = provider_id.title()
        self.tier = tier
        self.modalities = modalities
        self._models = models or (f"{provider_id}-model",)
        self.secret = secret
        self.credential_names = (secret,) if secret else ()
        self.outcomes: deque[ProviderError | str] = deque()
        self.calls: list[ProviderRequest] = []

    def models(self) -> tuple[str, ...]:
        return self._models

    def serves(self, model: str, modality: str) -> bool:
        return model in self._models

    def default_model(self, modality: str) -> str:
        return self._models[0]

    def unavailable_reason(self, credentials: Credentials) -> str | None:
        if self.secret and not credentials.get(self.secret):
            return f"set the {self.secret} secret"
        return None

    def endpoint(self, credentials: Credentials) -> str:
        return "https://example.test"

    def estimate_tokens(self, request: ProviderRequest) -> tuple[int, int]:
        return 1000, 1000

    async def execute(
        self, request: ProviderRequest, credentials: Credentials = NO_CREDENTIALS
    ) -> ProviderResult:
        self.calls.append(request)
        outcome = self.outcomes.popleft() if self.outcomes else f"{self.id} says hi"
        if isinstance(outcome, ProviderError):
            raise outcome
        return ProviderResult(
            self.id, request.model or "", {"text": outcome}, input_tokens=1000, output_tokens=10
        )

    async def check_health(self, credentials: Credentials) -> None:
        return None


PRICES = PriceTable(
    {
        "cheap-model": ModelPrice(input=0.1, output=0.4),
        "pricey-model": ModelPrice(input=3.0, output=15.0),
        "local-model": ModelPrice(input=0.0, output=0.0),
    }
)
ALL_KEYS = Credentials({"CHEAP_KEY": "k1", "PRICEY_KEY": "k2"})


def build(*extra: Scripted, breaker: CircuitBreaker | None = None) -> ProviderRegistry:
    return ProviderRegistry([EchoProvider(), *extra], prices=PRICES, breaker=breaker)


def premium_pair() -> tuple[Scripted, Scripted]:
    pricey = Scripted("pricey", models=("pricey-model",), secret="PRICEY_KEY")
    cheap = Scripted("cheap", models=("cheap-model",), secret="CHEAP_KEY")
    return pricey, cheap


def text(model: str | None = None) -> ProviderRequest:
    return ProviderRequest(modality="text", input={"prompt": "Hello"}, model=model)


async def test_no_model_no_tier_stays_on_echo_even_with_paid_providers() -> None:
    registry = build(*premium_pair())

    execution = await registry.execute(text(), None, ALL_KEYS)

    assert execution.result.provider_id == "echo"
    assert execution.result.cost_usd == 0.0
    assert execution.tier == "basic"


async def test_a_free_configured_provider_beats_echo_at_equal_price() -> None:
    local = Scripted("local", tier="basic", models=("local-model",))
    registry = build(local)

    assert (await registry.execute(text(), None, NO_CREDENTIALS)).result.provider_id == "local"
    assert (await registry.execute(text(), "basic", NO_CREDENTIALS)).result.provider_id == "local"


async def test_premium_tier_picks_the_cheapest_available() -> None:
    pricey, cheap = premium_pair()
    registry = build(pricey, cheap)

    execution = await registry.execute(text(), "premium", ALL_KEYS)

    assert execution.result.provider_id == "cheap"
    assert execution.result.model == "cheap-model"
    # 1000 input tokens at $0.1/M and 10 output tokens at $0.4/M.
    assert execution.result.cost_usd == pytest.approx(0.000104)
    assert pricey.calls == []

    only_pricey = Credentials({"PRICEY_KEY": "k2"})
    assert (await registry.execute(text(), "premium", only_pricey)).result.provider_id == "pricey"


async def test_a_pinned_model_selects_its_provider() -> None:
    pricey, cheap = premium_pair()
    registry = build(pricey, cheap)

    assert (await registry.execute(text("pricey-model"), None, ALL_KEYS)).result.provider_id == (
        "pricey"
    )
    assert (await registry.execute(text("echo-1"), None, ALL_KEYS)).result.provider_id == "echo"
    with pytest.raises(ProviderInputError, match="no provider offers model 'nope'"):
        await registry.execute(text("nope"), None, ALL_KEYS)
    with pytest.raises(ProviderInputError, match="no basic provider"):
        await registry.execute(text("pricey-model"), "basic", ALL_KEYS)


async def test_missing_credentials_name_the_secret_to_set() -> None:
    registry = build(*premium_pair())

    with pytest.raises(ProviderNotConfigured) as pinned:
        await registry.execute(text("pricey-model"), None, NO_CREDENTIALS)
    assert pinned.value.status_code == 422
    assert pinned.value.code == "provider_not_configured"
    assert "set the PRICEY_KEY secret" in pinned.value.message

    with pytest.raises(ProviderNotConfigured) as tiered:
        await registry.execute(text(), "premium", NO_CREDENTIALS)
    assert "PRICEY_KEY" in tiered.value.message
    assert "CHEAP_KEY" in tiered.value.message


async def test_fallback_to_the_next_provider_on_an_upstream_failure() -> None:
    pricey, cheap = premium_pair()
    cheap.outcomes.append(UpstreamError("cheap is down", provider_id="cheap"))
    registry = build(pricey, cheap)

    execution = await registry.execute(text(), "premium", ALL_KEYS)

    assert execution.result.provider_id == "pricey"
    assert execution.result.model == "pricey-model"
    assert execution.failed_attempts == (
        {"provider_id": "cheap", "code": "upstream_error", "message": "cheap is down"},
    )


async def test_refused_credentials_also_fall_back() -> None:
    pricey, cheap = premium_pair()
    cheap.outcomes.append(ProviderAuthFailed("bad key", provider_id="cheap"))

    execution = await build(pricey, cheap).execute(text(), "premium", ALL_KEYS)

    assert execution.result.provider_id == "pricey"


async def test_input_errors_never_fall_back() -> None:
    pricey, cheap = premium_pair()
    cheap.outcomes.append(ProviderRejected("prompt too long", provider_id="cheap"))

    with pytest.raises(ProviderRejected):
        await build(pricey, cheap).execute(text(), "premium", ALL_KEYS)
    assert pricey.calls == []


async def test_when_every_provider_fails_the_first_error_lists_all_attempts() -> None:
    pricey, cheap = premium_pair()
    cheap.outcomes.append(UpstreamError("cheap is down", provider_id="cheap"))
    pricey.outcomes.append(UpstreamError("pricey is down", provider_id="pricey"))

    with pytest.raises(UpstreamError) as caught:
        await build(pricey, cheap).execute(text(), "premium", ALL_KEYS)

    assert caught.value.message == "cheap is down"
    assert caught.value.details is not None
    assert [a["provider_id"] for a in caught.value.details["attempts"]] == ["cheap", "pricey"]


async def test_echo_is_never_a_fallback_for_a_real_provider() -> None:
    local = Scripted("local", tier="basic", models=("local-model",))
    local.outcomes.append(UpstreamError("local model crashed", provider_id="local"))

    with pytest.raises(UpstreamError):
        await build(local).execute(text(), None, NO_CREDENTIALS)


async def test_circuit_breaker_skips_a_failing_endpoint_then_lets_it_back() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=30.0, clock=lambda: now[0])
    pricey, cheap = premium_pair()
    registry = build(pricey, cheap, breaker=breaker)
    down = UpstreamError("cheap is down", provider_id="cheap")

    for _ in range(2):
        cheap.outcomes.append(down)
        assert (await registry.execute(text(), "premium", ALL_KEYS)).result.provider_id == "pricey"
    assert len(cheap.calls) == 2

    # Open: the cheap provider is skipped without a call, and listed as unhealthy.
    assert (await registry.execute(text(), "premium", ALL_KEYS)).result.provider_id == "pricey"
    assert len(cheap.calls) == 2
    listed = {p["id"]: p for p in registry.catalogue(ALL_KEYS)}
    assert listed["cheap"]["healthy"] is False
    assert listed["pricey"]["healthy"] is True

    # After the cooldown a call goes through again; its success closes the circuit.
    now[0] = 31.0
    assert (await registry.execute(text(), "premium", ALL_KEYS)).result.provider_id == "cheap"
    assert {p["id"]: p for p in registry.catalogue(ALL_KEYS)}["cheap"]["healthy"] is True


async def test_all_circuits_open_is_a_503_with_a_wait() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=1, cooldown=20.0, clock=lambda: now[0])
    cheap = Scripted("cheap", models=("cheap-model",), secret="CHEAP_KEY")
    cheap.outcomes.append(UpstreamError("down", provider_id="cheap"))
    registry = build(cheap, breaker=breaker)
    with pytest.raises(UpstreamError):
        await registry.execute(text("cheap-model"), None, ALL_KEYS)

    now[0] = 5.0
    with pytest.raises(ProviderUnavailable) as caught:
        await registry.execute(text("cheap-model"), None, ALL_KEYS)
    assert caught.value.status_code == 503
    assert caught.value.code == "provider_unavailable"
    assert "retry in 15 s" in caught.value.message


async def test_auth_failures_do_not_open_the_circuit() -> None:
    breaker = CircuitBreaker(threshold=1)
    cheap = Scripted("cheap", models=("cheap-model",), secret="CHEAP_KEY")
    cheap.outcomes.extend([ProviderAuthFailed("bad key", provider_id="cheap")] * 2)
    registry = build(cheap, breaker=breaker)

    for _ in range(2):
        with pytest.raises(ProviderAuthFailed):
            await registry.execute(text("cheap-model"), None, ALL_KEYS)
    assert len(cheap.calls) == 2


def test_estimate_without_credentials_still_prices_the_pinned_model() -> None:
    pricey, cheap = premium_pair()
    estimate = build(pricey, cheap).estimate(text("pricey-model"), None, NO_CREDENTIALS)

    assert estimate == {
        "provider_id": "pricey",
        "model": "pricey-model",
        "modality": "text",
        "tier": "premium",
        "input_tokens_estimate": 1000,
        "output_tokens_estimate": 1000,
        "estimated_cost_usd": pytest.approx(0.018),
        "currency": "USD",
        "available": False,
    }


def test_echo_estimate_is_free() -> None:
    estimate = build(*premium_pair()).estimate(text(), None, ALL_KEYS)

    assert estimate["provider_id"] == "echo"
    assert estimate["estimated_cost_usd"] == 0.0
    assert estimate["input_tokens_estimate"] == 1


def test_catalogue_lists_unavailable_providers_with_a_reason() -> None:
    pricey, cheap = premium_pair()
    listed = {p["id"]: p for p in build(pricey, cheap).catalogue(Credentials({"CHEAP_KEY": "k"}))}

    assert listed["echo"]["available"] is True
    assert listed["echo"]["reason"] is None
    assert listed["echo"]["modalities"] == ["text", "image", "audio", "video", "embedding"]
    assert listed["pricey"]["available"] is False
    assert listed["pricey"]["reason"] == "set the PRICEY_KEY secret"
    assert listed["cheap"]["available"] is True
    (capability,) = listed["pricey"]["capabilities"]
    assert capability == {
        "modality": "text",
        "model": "pricey-model",
        "supports_streaming": False,
        "estimated_cost_per_request": pytest.approx(0.0105),
        "input_cost_per_million_tokens": 3.0,
        "output_cost_per_million_tokens": 15.0,
        "cost_per_request": 0.0,
        "price_unit": "tokens",
        "default": True,
    }


def test_route_keeps_answering_without_credentials() -> None:
    registry = build(*premium_pair())
    assert registry.route(text()).id == "echo"
    assert registry.route(text("cheap-model")).id == "cheap"


def test_price_table_prefixes_and_overrides() -> None:
    table = PriceTable({"gpt-4o": ModelPrice(input=1.0, output=2.0)})
    assert table.price("gpt-4o-2024-08-06") == ModelPrice(input=1.0, output=2.0)
    assert table.price("gpt-4o-mini-2024-07-18") == ModelPrice(input=0.15, output=0.60)
    assert table.price("claude-3-5-haiku-latest") == ModelPrice(input=0.80, output=4.00)
    assert table.price("llama3.2") is None
    assert table.cost("llama3.2", 10_000, 10_000) == 0.0
    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
