"""Adapter contract tests: the exact requests our OpenAI and Anthropic adapters send, and how
each kind of upstream answer maps onto our errors — over real HTTP to a loopback fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_llm import FakeLLM, Reply, anthropic_error, openai_error

from fabric_server.providers.anthropic import AnthropicProvider
from fabric_server.providers.base import Credentials, ProviderInputError, ProviderRequest
from fabric_server.providers.errors import (
    ProviderAuthFailed,
    ProviderNotConfigured,
    ProviderRateLimited,
    ProviderRejected,
    UpstreamError,
    UpstreamTimeout,
)
from fabric_server.providers.http import UpstreamClient
from fabric_server.providers.openai import OpenAIProvider
from fabric_server.testing import free_port

KEY = "sk-test-secret-123"


@pytest.fixture
async def http() -> AsyncIterator[UpstreamClient]:
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    client = UpstreamClient(timeout=2.0, max_retries=2, retry_base=0.01, sleep=record)
    client.sleeps = sleeps  # type: ignore[attr-defined]
    yield client
    await client.aclose()


def server_credentials(llm: FakeLLM) -> Credentials:
    """Credentials as server settings supply them (a trusted endpoint)."""
    return Credentials({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": llm.openai_base_url})


def text(prompt: str = "Hello", **params: object) -> ProviderRequest:
    return ProviderRequest(modality="text", input={"prompt": prompt}, params=dict(params))


# --- OpenAI ---------------------------------------------------------------------------------


async def test_openai_chat_request_and_result(llm: FakeLLM, http: UpstreamClient) -> None:
    provider = OpenAIProvider(http)
    request = ProviderRequest(
        modality="text",
        input={"prompt": "Hello", "system": "Be brief"},
        model="gpt-4o",
        params={"temperature": 0.2, "max_tokens": 50, "delay_ms": 5, "fail": None},
    )

    result = await provider.execute(request, server_credentials(llm))

    (sent,) = llm.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Hello"},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
    }
    assert result.provider_id == "openai"
    assert result.model == "gpt-4o"
    assert result.output["text"] == "fake: Hello"
    assert result.output["model"] == "gpt-4o-2024-08-06"
    assert result.output["finish_reason"] == "stop"
    assert (result.input_tokens, result.output_tokens) == (12, 7)


async def test_openai_messages_are_passed_through(llm: FakeLLM, http: UpstreamClient) -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell me more"},
    ]
    request = ProviderRequest(modality="text", input={"messages": messages})

    await OpenAIProvider(http).execute(request, server_credentials(llm))

    assert llm.requests[0].body == {"model": "gpt-4o-mini", "messages": messages}


async def test_openai_embeddings(llm: FakeLLM, http: UpstreamClient) -> None:
    request = ProviderRequest(
        modality="embedding", input={"text": "vectors please"}, params={"dimensions": 3}
    )

    result = await OpenAIProvider(http).execute(request, server_credentials(llm))

    (sent,) = llm.requests
    assert sent.path == "/v1/embeddings"
    assert sent.body == {
        "model": "text-embedding-3-small",
        "input": "vectors please",
        "dimensions": 3,
    }
    assert result.output["embedding"] == [0.25, -0.5, 0.75]
    assert result.output["dimensions"] == 3
    assert (result.input_tokens, result.output_tokens) == (5, 0)


async def test_openai_401_is_an_auth_failure_without_the_upstream_text(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    llm.queue(Reply(401, openai_error("Incorrect API key provided: sk-te***123", "auth")))

    with pytest.raises(ProviderAuthFailed) as caught:
        await OpenAIProvider(http).execute(text(), server_credentials(llm))

    assert caught.value.status_code == 424
    assert caught.value.code == "provider_auth_failed"
    assert "OPENAI_API_KEY" in caught.value.message
    assert "sk-te" not in caught.value.message
    assert not caught.value.transient
    assert len(llm.requests) == 1


async def test_openai_429_carries_retry_after(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(Reply(429, openai_error("Rate limit reached", "rate_limit"), {"Retry-After": "7"}))

    with pytest.raises(ProviderRateLimited) as caught:
        await OpenAIProvider(http).execute(text(), server_credentials(llm))

    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after == 7
    assert caught.value.transient
    assert len(llm.requests) == 1


async def test_openai_429_retry_after_ms(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(Reply(429, openai_error("slow down"), {"retry-after-ms": "1500"}))

    with pytest.raises(ProviderRateLimited) as caught:
        await OpenAIProvider(http).execute(text(), server_credentials(llm))

    assert caught.value.retry_after == 2


async def test_openai_500_is_retried_then_reported(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(*[Reply(500, openai_error("boom", "server_error"))] * 3)

    with pytest.raises(UpstreamError) as caught:
        await OpenAIProvider(http).execute(text(), server_credentials(llm))

    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_error"
    assert caught.value.details == {"provider_id": "openai", "upstream_status": 500}
    assert len(llm.requests) == 3  # the first try and two retries
    sleeps = http.sleeps  # type: ignore[attr-defined]
    assert len(sleeps) == 2
    assert all(0 <= s <= 0.02 for s in sleeps)  # jittered, within the backoff ceiling


async def test_openai_recovers_when_a_retry_succeeds(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(Reply(503, openai_error("busy")))

    result = await OpenAIProvider(http).execute(text("again"), server_credentials(llm))

    assert result.output["text"] == "fake: again"
    assert len(llm.requests) == 2


async def test_openai_timeout_is_not_retried(llm: FakeLLM) -> None:
    llm.queue(Reply(delay=1.0))
    http = UpstreamClient(timeout=0.2, max_retries=2, retry_base=0.0)
    try:
        with pytest.raises(UpstreamTimeout) as caught:
            await OpenAIProvider(http).execute(text(), server_credentials(llm))
    finally:
        await http.aclose()

    assert caught.value.status_code == 504
    assert caught.value.code == "upstream_timeout"
    assert len(llm.requests) == 1


async def test_openai_400_is_the_callers_problem(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(Reply(400, openai_error("max_tokens is too large: 999999.")))

    with pytest.raises(ProviderRejected) as caught:
        await OpenAIProvider(http).execute(text(max_tokens=999999), server_credentials(llm))

    assert caught.value.status_code == 422
    assert caught.value.code == "provider_rejected_request"
    assert "max_tokens is too large" in caught.value.message
    assert not caught.value.fallback
    assert len(llm.requests) == 1


async def test_openai_unreachable_endpoint(http: UpstreamClient) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    credentials = Credentials({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": dead})

    with pytest.raises(UpstreamError) as caught:
        await OpenAIProvider(http).execute(text(), credentials)

    assert "Could not reach" in caught.value.message
    assert len(http.sleeps) == 2  # type: ignore[attr-defined]


async def test_openai_garbled_reply_is_an_upstream_error(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    llm.queue(Reply(200, {"choices": []}))

    with pytest.raises(UpstreamError):
        await OpenAIProvider(http).execute(text(), server_credentials(llm))


async def test_openai_without_credentials_is_not_configured(http: UpstreamClient) -> None:
    with pytest.raises(ProviderNotConfigured) as caught:
        await OpenAIProvider(http).execute(text(), Credentials())

    assert "OPENAI_API_KEY" in caught.value.message


async def test_local_compatible_server_needs_no_key(llm: FakeLLM, http: UpstreamClient) -> None:
    provider = OpenAIProvider(http, chat_models=("llama3.2",), default_chat_model="llama3.2")
    credentials = Credentials({"OPENAI_BASE_URL": llm.openai_base_url})

    assert provider.unavailable_reason(credentials) is None
    result = await provider.execute(text(), credentials)

    assert "authorization" not in llm.requests[0].headers
    assert llm.requests[0].body["model"] == "llama3.2"
    assert result.model == "llama3.2"


async def test_organization_endpoint_on_a_private_address_is_refused(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    credentials = Credentials(
        {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": llm.openai_base_url},
        from_organization=frozenset({"OPENAI_API_KEY", "OPENAI_BASE_URL"}),
    )

    with pytest.raises(ProviderNotConfigured) as caught:
        await OpenAIProvider(http).execute(text(), credentials)

    assert "private" in caught.value.message
    assert llm.requests == []


async def test_server_key_never_goes_to_an_organization_endpoint(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    provider = OpenAIProvider(http, allow_private_urls=True)
    # The base URL is the organization's, the key the server's.
    borrowed = Credentials(
        {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": llm.openai_base_url},
        from_organization=frozenset({"OPENAI_BASE_URL"}),
    )
    await provider.execute(text(), borrowed)
    assert "authorization" not in llm.requests[-1].headers

    own = Credentials(
        {"OPENAI_API_KEY": "sk-org-own", "OPENAI_BASE_URL": llm.openai_base_url},
        from_organization=frozenset({"OPENAI_API_KEY", "OPENAI_BASE_URL"}),
    )
    await provider.execute(text(), own)
    assert llm.requests[-1].headers["authorization"] == "Bearer sk-org-own"


async def test_openai_health_check_lists_models(llm: FakeLLM, http: UpstreamClient) -> None:
    await OpenAIProvider(http).check_health(server_credentials(llm))

    (sent,) = llm.requests
    assert (sent.method, sent.path) == ("GET", "/v1/models")
    assert sent.headers["authorization"] == f"Bearer {KEY}"


def test_openai_model_pinning() -> None:
    provider = OpenAIProvider(UpstreamClient(), chat_models=("llama3.2",))
    assert provider.serves("gpt-4o", "text")
    assert provider.serves("o3-mini", "text")
    assert provider.serves("llama3.2", "text")
    assert provider.serves("text-embedding-3-large", "embedding")
    assert not provider.serves("gpt-4o", "embedding")
    assert not provider.serves("claude-sonnet-4-0", "text")
    assert not provider.serves("gpt-4o", "image")


# --- Anthropic ------------------------------------------------------------------------------


def anthropic(http: UpstreamClient, llm: FakeLLM) -> AnthropicProvider:
    return AnthropicProvider(http, base_url=llm.base_url, default_model="claude-haiku-4-5")


ANTHROPIC_KEY = Credentials({"ANTHROPIC_API_KEY": "ak-test-456"})


async def test_anthropic_messages_request_and_result(llm: FakeLLM, http: UpstreamClient) -> None:
    request = ProviderRequest(
        modality="text",
        input={"prompt": "Hello", "system": "Be brief"},
        model="claude-sonnet-4-0",
        params={"temperature": 0.5, "stop": "END", "delay_ms": 1},
    )

    result = await anthropic(http, llm).execute(request, ANTHROPIC_KEY)

    (sent,) = llm.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["x-api-key"] == "ak-test-456"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert sent.body == {
        "model": "claude-sonnet-4-0",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello"}],
        "system": "Be brief",
        "stop_sequences": ["END"],
        "temperature": 0.5,
    }
    assert result.provider_id == "anthropic"
    assert result.output["text"] == "claude: Hello"
    assert result.output["finish_reason"] == "end_turn"
    assert (result.input_tokens, result.output_tokens) == (10, 4)


async def test_anthropic_max_tokens_and_default_model(llm: FakeLLM, http: UpstreamClient) -> None:
    await anthropic(http, llm).execute(text("Hi", max_tokens=64), ANTHROPIC_KEY)

    body = llm.requests[0].body
    assert body["model"] == "claude-haiku-4-5"
    assert body["max_tokens"] == 64
    assert "system" not in body


async def test_anthropic_401(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(Reply(401, anthropic_error("invalid x-api-key", "authentication_error")))

    with pytest.raises(ProviderAuthFailed) as caught:
        await anthropic(http, llm).execute(text(), ANTHROPIC_KEY)

    assert "ANTHROPIC_API_KEY" in caught.value.message
    assert len(llm.requests) == 1


async def test_anthropic_429(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(Reply(429, anthropic_error("slow down", "rate_limit_error"), {"retry-after": "3"}))

    with pytest.raises(ProviderRateLimited) as caught:
        await anthropic(http, llm).execute(text(), ANTHROPIC_KEY)

    assert caught.value.retry_after == 3


async def test_anthropic_overloaded_is_retried(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(*[Reply(529, anthropic_error("Overloaded", "overloaded_error"))] * 3)

    with pytest.raises(UpstreamError) as caught:
        await anthropic(http, llm).execute(text(), ANTHROPIC_KEY)

    assert caught.value.details == {"provider_id": "anthropic", "upstream_status": 529}
    assert len(llm.requests) == 3


async def test_anthropic_timeout(llm: FakeLLM) -> None:
    llm.queue(Reply(delay=1.0))
    http = UpstreamClient(timeout=0.2)
    try:
        with pytest.raises(UpstreamTimeout):
            await anthropic(http, llm).execute(text(), ANTHROPIC_KEY)
    finally:
        await http.aclose()


async def test_anthropic_without_a_key(llm: FakeLLM, http: UpstreamClient) -> None:
    with pytest.raises(ProviderNotConfigured) as caught:
        await anthropic(http, llm).execute(text(), Credentials())

    assert "ANTHROPIC_API_KEY" in caught.value.message
    assert llm.requests == []


async def test_anthropic_refuses_other_modalities(llm: FakeLLM, http: UpstreamClient) -> None:
    request = ProviderRequest(modality="embedding", input={"text": "x"})
    with pytest.raises(ProviderInputError):
        await anthropic(http, llm).execute(request, ANTHROPIC_KEY)


async def test_anthropic_health_check(llm: FakeLLM, http: UpstreamClient) -> None:
    await anthropic(http, llm).check_health(ANTHROPIC_KEY)

    (sent,) = llm.requests
    assert (sent.method, sent.path) == ("GET", "/v1/models")
    assert sent.headers["x-api-key"] == "ak-test-456"


def test_credentials_never_show_in_repr() -> None:
    assert "ak-test-456" not in repr(ANTHROPIC_KEY)


async def test_anthropic_organization_gateway_gets_only_the_organizations_key(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    # The server's own endpoint is unreachable; the organization's gateway is the fake.
    provider = AnthropicProvider(http, base_url="http://127.0.0.1:9", allow_private_urls=True)
    borrowed = Credentials(
        {"ANTHROPIC_API_KEY": "ak-server", "ANTHROPIC_BASE_URL": llm.base_url},
        from_organization=frozenset({"ANTHROPIC_BASE_URL"}),
    )
    reason = provider.unavailable_reason(borrowed)
    assert reason is not None
    assert "ANTHROPIC_API_KEY" in reason
    with pytest.raises(ProviderNotConfigured):
        await provider.execute(text(), borrowed)
    assert llm.requests == []

    own = Credentials(
        {"ANTHROPIC_API_KEY": "ak-org", "ANTHROPIC_BASE_URL": llm.base_url + "/"},
        from_organization=frozenset({"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"}),
    )
    result = await provider.execute(text(), own)
    assert provider.endpoint(own) == llm.base_url
    assert llm.requests[-1].path == "/v1/messages"
    assert llm.requests[-1].headers["x-api-key"] == "ak-org"
    assert result.output["text"] == "claude: Hello"


async def test_anthropic_organization_gateway_on_a_private_address_is_refused(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    own = Credentials(
        {"ANTHROPIC_API_KEY": "ak-org", "ANTHROPIC_BASE_URL": llm.base_url},
        from_organization=frozenset({"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"}),
    )

    with pytest.raises(ProviderNotConfigured) as caught:
        await AnthropicProvider(http).execute(text(), own)

    assert "private" in caught.value.message
    assert llm.requests == []
