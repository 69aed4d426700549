"""Providers configured against a loopback fake of the OpenAI and Anthropic APIs: direct
execution, error mapping over HTTP, fallback, and jobs end to end with usage and cost."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fake_llm import FakeLLM, Reply, anthropic_error, openai_error
from server_helpers import assert_error, wait_for_job
from sqlalchemy import select

from fabric_server.services import Services
from fabric_server.settings import DEV_OWNER_ID, Settings
from fabric_server.testing import fast_settings
from fabric_server.usage.models import UsageRecord


@pytest.fixture
def settings(database_url: str, tmp_path: Path, llm: FakeLLM) -> Settings:
    """Both real providers configured by the operator, pointing at the fake."""
    return fast_settings(
        database_url,
        tmp_path,
        openai_api_key="sk-server-key",
        openai_base_url=llm.openai_base_url,
        anthropic_api_key="ak-server-key",
        anthropic_base_url=llm.base_url,
        provider_timeout_seconds=0.5,
        provider_retry_base_seconds=0.0,
    )


async def execute(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    payload = {"modality": "text", "input": {"prompt": "Hello"}, **body}
    return await client.post("/v1/providers/execute", json=payload)


async def test_catalogue_and_health_checks(client: httpx.AsyncClient, llm: FakeLLM) -> None:
    listed = {p["id"]: p for p in (await client.get("/v1/providers")).json()["data"]}
    assert listed["openai"]["available"] is True
    assert listed["openai"]["reason"] is None
    assert listed["anthropic"]["available"] is True
    assert llm.requests == []  # listing alone calls nobody

    checked = await client.get("/v1/providers", params={"check": "true"})
    assert all(p["healthy"] for p in checked.json()["data"])
    assert sorted(llm.paths()) == ["/v1/models", "/v1/models"]
    await client.get("/v1/providers", params={"check": "true"})
    assert len(llm.requests) == 2  # cached


async def test_execute_pinned_models(
    client: httpx.AsyncClient, llm: FakeLLM, services: Services
) -> None:
    gpt = await execute(client, model="gpt-4o")
    assert gpt.status_code == 200, gpt.text
    data = gpt.json()["data"]
    assert (data["provider_id"], data["model"], data["tier"]) == ("openai", "gpt-4o", "premium")
    assert data["output"]["text"] == "fake: Hello"
    # 12 tokens in at $2.50/M, 7 out at $10/M.
    assert data["usage"] == {
        "input_tokens": 12,
        "output_tokens": 7,
        "estimated_cost_usd": pytest.approx(0.0001),
    }
    assert llm.requests[0].headers["authorization"] == "Bearer sk-server-key"

    claude = await execute(client, model="claude-sonnet-4-0")
    data = claude.json()["data"]
    assert (data["provider_id"], data["output"]["text"]) == ("anthropic", "claude: Hello")
    assert data["usage"]["estimated_cost_usd"] == pytest.approx((10 * 3 + 4 * 15) / 1e6)

    embedding = await client.post(
        "/v1/providers/execute",
        json={"modality": "embedding", "input": {"text": "v"}, "model": "text-embedding-3-small"},
    )
    assert embedding.json()["data"]["output"]["embedding"] == [0.25, -0.5, 0.75]

    async with services.db.read() as session:
        rows = (await session.scalars(select(UsageRecord).order_by(UsageRecord.id))).all()
    assert [(r.provider_id, r.input_tokens, r.output_tokens) for r in rows] == [
        ("openai", 12, 7),
        ("anthropic", 10, 4),
        ("openai", 5, 0),
    ]
    assert all(r.principal_id == DEV_OWNER_ID for r in rows)


async def test_no_model_still_means_echo(client: httpx.AsyncClient, llm: FakeLLM) -> None:
    response = await execute(client)
    assert response.json()["data"]["provider_id"] == "echo"
    assert llm.requests == []


async def test_premium_tier_goes_to_the_cheapest_real_provider(
    client: httpx.AsyncClient, llm: FakeLLM
) -> None:
    response = await execute(client, tier="premium")
    data = response.json()["data"]
    assert (data["provider_id"], data["model"]) == ("openai", "gpt-4o-mini")


async def test_upstream_errors_map_onto_our_codes(client: httpx.AsyncClient, llm: FakeLLM) -> None:
    llm.queue(Reply(429, openai_error("Rate limit reached"), {"Retry-After": "7"}))
    limited = await execute(client, model="gpt-4o")
    assert_error(limited, 429, "rate_limited")
    assert limited.headers["retry-after"] == "7"

    llm.queue(Reply(401, openai_error("Incorrect API key provided: sk-se***key")))
    refused = await execute(client, model="gpt-4o")
    body = assert_error(refused, 424, "provider_auth_failed")
    assert "sk-se" not in refused.text
    assert body["error"]["details"]["provider_id"] == "openai"

    llm.queue(*[Reply(500, openai_error("boom"))] * 3)
    failed = await execute(client, model="gpt-4o")
    assert_error(failed, 502, "upstream_error")

    llm.queue(Reply(delay=1.5))
    slow = await execute(client, model="gpt-4o")
    assert_error(slow, 504, "upstream_timeout")

    invalid = anthropic_error("messages: roles must alternate", "invalid_request_error")
    llm.queue(Reply(400, invalid))
    rejected = await execute(client, model="claude-sonnet-4-0")
    body = assert_error(rejected, 422, "provider_rejected_request")
    assert "roles must alternate" in body["error"]["message"]


async def test_premium_falls_back_from_openai_to_anthropic(
    client: httpx.AsyncClient, llm: FakeLLM
) -> None:
    llm.queue(*[Reply(500, openai_error("boom"))] * 3)

    response = await execute(client, tier="premium")

    data = response.json()["data"]
    assert data["provider_id"] == "anthropic"
    assert data["failed_attempts"] == [
        {
            "provider_id": "openai",
            "code": "upstream_error",
            "message": "The OpenAI API failed (HTTP 500).",
        }
    ]
    assert llm.paths() == ["/v1/chat/completions"] * 3 + ["/v1/messages"]


async def test_job_runs_on_the_upstream_and_records_tokens_and_cost(
    client: httpx.AsyncClient, llm: FakeLLM
) -> None:
    submitted = await client.post(
        "/v1/jobs",
        json={"modality": "text", "input": {"prompt": "Summarize this"}, "model": "gpt-4o"},
    )
    assert submitted.status_code == 201, submitted.text
    job = await wait_for_job(client, submitted.json()["data"]["id"])

    assert job["status"] == "completed"
    assert job["output"]["text"] == "fake: Summarize this"
    assert job["output"]["provider"] == "openai"
    usage = (await client.get(f"/v1/jobs/{job['id']}/usage")).json()["data"]
    assert (usage["provider_id"], usage["model"]) == ("openai", "gpt-4o")
    assert (usage["input_tokens"], usage["output_tokens"]) == (12, 7)
    assert usage["estimated_cost_usd"] == pytest.approx(0.0001)
    assert llm.requests[0].body["messages"] == [{"role": "user", "content": "Summarize this"}]


async def test_jobs_retry_transient_upstream_failures(
    client: httpx.AsyncClient, llm: FakeLLM
) -> None:
    llm.queue(Reply(429, openai_error("slow down"), {"Retry-After": "1"}))

    submitted = await client.post(
        "/v1/jobs", json={"modality": "text", "input": {"prompt": "again"}, "model": "gpt-4o"}
    )
    job = await wait_for_job(client, submitted.json()["data"]["id"])

    assert job["status"] == "completed"
    assert job["attempts"] == 2
    assert job["output"]["text"] == "fake: again"


async def test_jobs_fail_at_once_on_refused_credentials(
    client: httpx.AsyncClient, llm: FakeLLM
) -> None:
    llm.queue(Reply(401, anthropic_error("invalid x-api-key", "authentication_error")))

    submitted = await client.post(
        "/v1/jobs",
        json={"modality": "text", "input": {"prompt": "x"}, "model": "claude-sonnet-4-0"},
    )
    job = await wait_for_job(client, submitted.json()["data"]["id"])

    assert job["status"] == "failed"
    assert job["attempts"] == 1
    assert job["error"].startswith("provider_auth_failed: ")
    assert "ANTHROPIC_API_KEY" in job["error"]
    assert len(llm.requests) == 1
