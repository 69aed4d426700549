"""Streaming contract tests: what our adapters send to stream a chat answer, how they read the
OpenAI and Anthropic event formats, and how failures before and during a stream map onto our
errors — over real HTTP to the loopback fake. Then routing of streams across providers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_llm import (
    FakeLLM,
    Reply,
    anthropic_error,
    anthropic_events,
    openai_chunk,
    openai_error,
    sse,
)

from fabric_server.providers.anthropic import AnthropicProvider
from fabric_server.providers.base import (
    Credentials,
    ProviderRequest,
    ProviderResult,
    StreamItem,
    TextDelta,
)
from fabric_server.providers.echo import EchoProvider
from fabric_server.providers.errors import (
    ProviderAuthFailed,
    ProviderRateLimited,
    ProviderRejected,
    UpstreamError,
    UpstreamTimeout,
)
from fabric_server.providers.http import UpstreamClient
from fabric_server.providers.openai import OpenAIProvider
from fabric_server.providers.registry import Execution, ProviderRegistry, StreamOpened

KEY = "sk-test-secret-123"


@pytest.fixture
async def http() -> AsyncIterator[UpstreamClient]:
    async def no_sleep(seconds: float) -> None:
        return None

    client = UpstreamClient(timeout=1.0, max_retries=2, retry_base=0.0, sleep=no_sleep)
    yield client
    await client.aclose()


def credentials(llm: FakeLLM) -> Credentials:
    return Credentials(
        {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": llm.openai_base_url, "ANTHROPIC_API_KEY": KEY}
    )


def text(prompt: str = "Hello there", **params: object) -> ProviderRequest:
    return ProviderRequest(modality="text", input={"prompt": prompt}, params=dict(params))


async def collect(items: AsyncIterator[StreamItem]) -> tuple[list[str], ProviderResult]:
    deltas: list[str] = []
    result = None
    async for item in items:
        assert result is None, "nothing may follow the result"
        if isinstance(item, TextDelta):
            deltas.append(item.text)
        else:
            result = item
    assert result is not None
    return deltas, result


# --- OpenAI ---------------------------------------------------------------------------------


async def test_openai_stream_request_and_deltas(llm: FakeLLM, http: UpstreamClient) -> None:
    provider = OpenAIProvider(http)
    request = ProviderRequest(
        modality="text",
        input={"prompt": "Hello there"},
        model="gpt-4o",
        params={"temperature": 0.1, "delay_ms": 5},
    )

    deltas, result = await collect(provider.stream(request, credentials(llm)))

    (sent,) = llm.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["accept"] == "text/event-stream"
    assert sent.body == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Hello there"}],
        "temperature": 0.1,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert deltas == ["fake: ", "Hello ", "there"]
    assert result.output["text"] == "fake: Hello there"
    assert result.output["finish_reason"] == "stop"
    assert result.output["model"] == "gpt-fake-2024"
    assert (result.provider_id, result.model) == ("openai", "gpt-4o")
    assert (result.input_tokens, result.output_tokens) == (12, 7)


async def test_openai_stream_without_usage_approximates_tokens(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    # A compatible server that ignores `stream_options` and omits `[DONE]`.
    llm.queue(Reply(frames=(sse(openai_chunk("abcd efgh")), sse(openai_chunk(None, "stop")))))

    deltas, result = await collect(OpenAIProvider(http).stream(text(), credentials(llm)))

    assert deltas == ["abcd efgh"]
    assert result.output["text"] == "abcd efgh"
    assert (result.input_tokens, result.output_tokens) == (3, 3)


async def test_openai_stream_errors_before_the_first_byte(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    provider = OpenAIProvider(http)
    llm.queue(Reply(429, openai_error("slow down", "rate_limit"), {"Retry-After": "7"}))
    with pytest.raises(ProviderRateLimited) as limited:
        await collect(provider.stream(text(), credentials(llm)))
    assert limited.value.retry_after == 7

    llm.queue(Reply(401, openai_error(f"Incorrect API key provided: {KEY}")))
    with pytest.raises(ProviderAuthFailed) as refused:
        await collect(provider.stream(text(), credentials(llm)))
    assert KEY not in refused.value.message

    llm.queue(Reply(400, openai_error("max_tokens is too large")))
    with pytest.raises(ProviderRejected, match="max_tokens is too large"):
        await collect(provider.stream(text(), credentials(llm)))


async def test_openai_stream_retries_server_errors_before_streaming(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    llm.queue(Reply(500, openai_error("boom", "server_error")), Reply(503))

    deltas, result = await collect(OpenAIProvider(http).stream(text(), credentials(llm)))

    assert len(llm.requests) == 3
    assert "".join(deltas) == result.output["text"] == "fake: Hello there"


async def test_openai_error_in_the_middle_of_a_stream(llm: FakeLLM, http: UpstreamClient) -> None:
    broken = (sse(openai_chunk("partial ")), sse(openai_error("model overloaded", "server_error")))
    llm.queue(Reply(frames=broken))

    deltas: list[str] = []
    with pytest.raises(UpstreamError, match="model overloaded"):
        async for item in OpenAIProvider(http).stream(text(), credentials(llm)):
            if isinstance(item, TextDelta):
                deltas.append(item.text)

    assert deltas == ["partial "]
    assert len(llm.requests) == 1  # never retried once text flowed


async def test_openai_stream_that_stalls_times_out(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(Reply(frames=(sse(openai_chunk("a")), sse(openai_chunk("b"))), frame_delay=3.0))

    with pytest.raises(UpstreamTimeout):
        await collect(OpenAIProvider(http).stream(text(), credentials(llm)))


# --- Anthropic ------------------------------------------------------------------------------


async def test_anthropic_stream_request_and_deltas(llm: FakeLLM, http: UpstreamClient) -> None:
    provider = AnthropicProvider(http, base_url=llm.base_url)
    request = ProviderRequest(
        modality="text",
        input={"prompt": "Hello there", "system": "Be brief"},
        model="claude-sonnet-4-5",
        params={"max_tokens": 64},
    )

    deltas, result = await collect(provider.stream(request, credentials(llm)))

    (sent,) = llm.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["accept"] == "text/event-stream"
    assert sent.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "system": "Be brief",
        "messages": [{"role": "user", "content": "Hello there"}],
        "stream": True,
    }
    assert deltas == ["claude: ", "Hello ", "there"]
    assert result.output["text"] == "claude: Hello there"
    assert result.output["finish_reason"] == "end_turn"
    assert (result.input_tokens, result.output_tokens) == (10, 4)


async def test_anthropic_error_event_in_the_middle_of_a_stream(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    started = anthropic_events("partial answer")[:4]
    overloaded = sse(anthropic_error("Overloaded", "overloaded_error"), "error")
    llm.queue(Reply(frames=(*started, overloaded)))
    provider = AnthropicProvider(http, base_url=llm.base_url)

    deltas: list[str] = []
    with pytest.raises(UpstreamError, match="Overloaded"):
        async for item in provider.stream(text(), credentials(llm)):
            if isinstance(item, TextDelta):
                deltas.append(item.text)

    assert deltas == ["partial "]


async def test_anthropic_stream_rate_limit_before_streaming(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    llm.queue(Reply(429, anthropic_error("slow", "rate_limit_error"), {"retry-after": "3"}))

    with pytest.raises(ProviderRateLimited) as limited:
        await collect(
            AnthropicProvider(http, base_url=llm.base_url).stream(text(), credentials(llm))
        )

    assert limited.value.retry_after == 3


# --- Echo and routing -----------------------------------------------------------------------


async def test_echo_streams_word_by_word_and_matches_its_whole_answer() -> None:
    echo = EchoProvider()
    request = text("one two  three")

    deltas, result = await collect(echo.stream(request))

    assert deltas == ["one ", "two  ", "three"]
    assert result == await echo.execute(request)


async def events(
    registry: ProviderRegistry,
    request: ProviderRequest,
    creds: Credentials,
    tier: str | None = None,
) -> list[object]:
    return [event async for event in registry.stream(request, tier, creds)]


def registry_for(http: UpstreamClient, llm: FakeLLM) -> ProviderRegistry:
    return ProviderRegistry(
        [EchoProvider(), OpenAIProvider(http), AnthropicProvider(http, base_url=llm.base_url)]
    )


async def test_stream_falls_back_before_the_first_delta(llm: FakeLLM, http: UpstreamClient) -> None:
    registry = registry_for(http, llm)
    request = ProviderRequest(modality="text", input={"prompt": "Hi"}, params={"max_tokens": 9})
    llm.queue(Reply(500), Reply(500), Reply(500))  # openai fails every attempt

    streamed = await events(registry, request, credentials(llm), "premium")

    opened = streamed[0]
    assert isinstance(opened, StreamOpened)
    assert (opened.provider_id, opened.tier) == ("anthropic", "premium")
    assert [e.text for e in streamed if isinstance(e, TextDelta)] == ["claude: ", "Hi"]
    execution = streamed[-1]
    assert isinstance(execution, Execution)
    assert execution.result.provider_id == "anthropic"
    assert execution.result.cost_usd > 0
    assert [a["provider_id"] for a in execution.failed_attempts] == ["openai"]


async def test_stream_does_not_fall_back_after_text_was_sent(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    registry = registry_for(http, llm)
    request = ProviderRequest(modality="text", input={"prompt": "Hi"}, params={"max_tokens": 9})
    llm.queue(Reply(frames=(sse(openai_chunk("half ")), "data: {not json\n\n")))

    seen: list[object] = []
    with pytest.raises(UpstreamError):
        async for event in registry.stream(request, "premium", credentials(llm)):
            seen.append(event)

    assert [type(e).__name__ for e in seen] == ["StreamOpened", "TextDelta"]
    assert llm.paths() == ["/v1/chat/completions"]  # anthropic was never tried
    partial = registry.partial(request, seen[0], "half ")  # type: ignore[arg-type]
    assert partial.result.output["finish_reason"] == "interrupted"
    assert partial.result.output_tokens == 2
    assert partial.result.cost_usd > 0


async def test_a_modality_that_cannot_stream_arrives_whole() -> None:
    registry = ProviderRegistry([EchoProvider()])
    request = ProviderRequest(modality="embedding", input={"text": "vector me"})

    streamed = await events(registry, request, Credentials())

    assert [type(e).__name__ for e in streamed] == ["StreamOpened", "Execution"]
    execution = streamed[-1]
    assert isinstance(execution, Execution)
    assert execution.result.output["dimensions"] == 16
