"""`POST /v1/providers/execute/stream`: the answer as Server-Sent Events, errors before the
stream as ordinary responses, failures during it as an `error` frame, usage recorded once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_llm import FakeLLM, Reply, openai_chunk, openai_error, sse
from server_helpers import assert_error, eventually
from sqlalchemy import select

from fabric_server.audit.models import AuditLog
from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, DEV_OWNER_ID, Settings
from fabric_server.testing import LiveServer, fast_settings
from fabric_server.usage.models import UsageRecord

STREAM = "/v1/providers/execute/stream"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, llm: FakeLLM) -> Settings:
    return fast_settings(
        database_url,
        tmp_path,
        openai_api_key="sk-server-key",
        openai_base_url=llm.openai_base_url,
        provider_timeout_seconds=1.0,
        provider_retry_base_seconds=0.0,
        sse_keepalive_seconds=0.05,
    )


def parse(body: str) -> list[tuple[str, Any]]:
    """(event, data) of every frame; keep-alive comments as ("keep-alive", None)."""
    frames: list[tuple[str, Any]] = []
    for block in body.split("\n\n"):
        if block.startswith(": keep-alive"):
            frames.append(("keep-alive", None))
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            frames.append((fields["event"], json.loads(fields["data"])))
    return frames


async def usage_rows(services: Services) -> list[UsageRecord]:
    async with services.db.read() as session:
        return list((await session.scalars(select(UsageRecord).order_by(UsageRecord.id))).all())


async def test_echo_answer_streams_word_by_word(
    client: httpx.AsyncClient, services: Services
) -> None:
    response = await client.post(
        STREAM,
        json={
            "modality": "text",
            "input": {"prompt": "stream these four words"},
            "params": {"delay_ms": 400},
        },
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    frames = parse(response.text)
    data = [(event, value) for event, value in frames if event != "keep-alive"]
    assert data[0] == ("started", {"provider_id": "echo", "model": "echo-1", "tier": "basic"})
    deltas = [value for event, value in data if event == "delta"]
    assert deltas == [
        {"index": 0, "text": "stream "},
        {"index": 1, "text": "these "},
        {"index": 2, "text": "four "},
        {"index": 3, "text": "words"},
    ]
    event, completed = data[-1]
    assert event == "completed"
    assert completed["output"]["text"] == "stream these four words"
    assert completed["usage"] == {"input_tokens": 4, "output_tokens": 4, "estimated_cost_usd": 0.0}
    assert ("keep-alive", None) in frames  # 100 ms between words, keep-alives every 50 ms
    (row,) = await usage_rows(services)
    assert (row.provider_id, row.input_tokens, row.output_tokens) == ("echo", 4, 4)
    assert (row.organization_id, row.principal_id) == (DEFAULT_ORGANIZATION_ID, DEV_OWNER_ID)


async def test_streamed_openai_answer_is_priced_and_audited(
    client: httpx.AsyncClient, services: Services, llm: FakeLLM
) -> None:
    response = await client.post(
        STREAM, json={"modality": "text", "input": {"prompt": "Hi you"}, "model": "gpt-4o"}
    )

    frames = [f for f in parse(response.text) if f[0] != "keep-alive"]
    assert [event for event, _ in frames] == ["started", "delta", "delta", "delta", "completed"]
    assert "".join(value["text"] for event, value in frames if event == "delta") == "fake: Hi you"
    completed = frames[-1][1]
    assert (completed["provider_id"], completed["model"]) == ("openai", "gpt-4o")
    assert completed["usage"]["estimated_cost_usd"] == pytest.approx((12 * 2.5 + 7 * 10) / 1e6)
    assert llm.requests[0].body["stream"] is True
    (row,) = await usage_rows(services)
    assert (row.provider_id, row.model, row.input_tokens, row.output_tokens) == (
        "openai",
        "gpt-4o",
        12,
        7,
    )
    async with services.db.read() as session:
        actions = (await session.scalars(select(AuditLog.action))).all()
    assert actions == ["provider.execute_stream"]


async def test_failures_before_the_stream_are_plain_error_responses(
    client: httpx.AsyncClient, services: Services, llm: FakeLLM
) -> None:
    invalid = await client.post(STREAM, json={"modality": "text", "input": {}})
    assert_error(invalid, 400, "validation_failed")

    unknown = await client.post(
        STREAM, json={"modality": "text", "input": {"prompt": "x"}, "model": "claude-opus-4-1"}
    )
    body = assert_error(unknown, 422, "provider_not_configured")
    assert "ANTHROPIC_API_KEY" in body["error"]["message"]

    llm.queue(Reply(429, openai_error("Rate limit reached"), {"Retry-After": "9"}))
    limited = await client.post(
        STREAM, json={"modality": "text", "input": {"prompt": "x"}, "model": "gpt-4o"}
    )
    assert_error(limited, 429, "rate_limited")
    assert limited.headers["retry-after"] == "9"

    echo_refusal = await client.post(
        STREAM, json={"modality": "text", "input": {"prompt": "x"}, "params": {"fail": "no"}}
    )
    assert_error(echo_refusal, 422, "validation_failed")
    assert await usage_rows(services) == []


async def test_a_failure_during_the_stream_ends_it_with_an_error_frame(
    client: httpx.AsyncClient, services: Services, llm: FakeLLM
) -> None:
    llm.queue(
        Reply(frames=(sse(openai_chunk("half an ")), sse(openai_chunk("answer ")), "data: {\n\n"))
    )

    response = await client.post(
        STREAM, json={"modality": "text", "input": {"prompt": "x"}, "model": "gpt-4o"}
    )

    assert response.status_code == 200
    frames = [f for f in parse(response.text) if f[0] != "keep-alive"]
    assert [event for event, _ in frames] == ["started", "delta", "delta", "error"]
    error = frames[-1][1]
    assert error["error"]["code"] == "upstream_error"
    assert error["meta"]["status"] == 502
    assert error["meta"]["request_id"] == response.headers["x-request-id"]
    (row,) = await usage_rows(services)  # what was produced is still accounted for
    assert (row.provider_id, row.model, row.output_tokens) == ("openai", "gpt-4o", 4)
    assert row.cost_usd > 0


async def test_streams_need_the_permission_to_run_jobs(
    client: httpx.AsyncClient, services: Services
) -> None:
    key = await client.post(
        "/v1/api-keys",
        json={"name": "reader", "organization_id": DEFAULT_ORGANIZATION_ID, "scopes": ["job.read"]},
    )
    assert key.status_code == 201, key.text
    headers = {"Authorization": f"Bearer {key.json()['data']['key']}"}
    denied = await client.post(
        STREAM, json={"modality": "text", "input": {"prompt": "x"}}, headers=headers
    )
    assert_error(denied, 403, "forbidden")

    elsewhere = await client.post(
        STREAM,
        json={"modality": "text", "input": {"prompt": "x"}, "organization_id": "org_nowhere"},
    )
    assert_error(elsewhere, 404, "not_found")


async def test_a_client_that_leaves_mid_stream_is_billed_for_what_it_got(
    settings: Settings, services: Services
) -> None:
    prompt = " ".join(f"w{i}" for i in range(40))
    with LiveServer(settings) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            payload = {
                "modality": "text",
                "input": {"prompt": prompt},
                "params": {"delay_ms": 40000},
            }
            async with http.stream("POST", STREAM, json=payload) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line.startswith("event: delta"):
                        break  # leave after the first word

        rows = await eventually(lambda: usage_rows(services), lambda rows: len(rows) == 1)

    (row,) = rows
    assert row.provider_id == "echo"
    assert 1 <= row.output_tokens < 40
