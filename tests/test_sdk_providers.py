"""The SDK's Providers, Usage and Galleries snippets of the product spec, against a real
server: one with no model provider configured, one pointed at a loopback OpenAI/Anthropic
fake."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_llm import FakeLLM

from fabric_platform import (
    AsyncFabricClient,
    FabricBudgetExceededError,
    FabricClient,
    FabricValidationError,
)
from fabric_server.testing import LiveServer, fast_settings

DEFAULT_ORG = "00000000-0000-0000-0000-000000000010"


def wait_done(fabric: FabricClient, job_id: str) -> None:
    deadline = time.monotonic() + 20
    while fabric.get_job(job_id)["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    fake = FakeLLM().start()
    yield fake
    fake.stop()


@pytest.fixture
def configured(database_url: str, tmp_path: Path, llm: FakeLLM) -> Iterator[LiveServer]:
    llm.reset()
    settings = fast_settings(
        database_url,
        tmp_path,
        openai_api_key="sk-test",
        openai_base_url=llm.openai_base_url,
        anthropic_api_key="ak-test",
        anthropic_base_url=llm.base_url,
    )
    with LiveServer(settings) as live:
        yield live


def test_spec_providers_snippet_on_a_bare_server(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        providers = fabric.providers()
        # [{"id": "openai", "modalities": ["text", "image", "audio", "embedding"]}, ...]
        by_id = {p["id"]: p for p in providers}
        assert by_id["openai"]["modalities"] == ["text", "image", "audio", "embedding"]
        assert by_id["openai"]["available"] is False
        assert by_id["echo"]["available"] is True
        assert fabric.list_providers() == providers

        # Direct provider execution: no OpenAI credentials here, so a clear 4xx.
        with pytest.raises(FabricValidationError) as missing:
            result = fabric.execute_provider(
                modality="text",
                input={"prompt": "Hello"},
                model="gpt-4o",
            )
        assert missing.value.status_code == 422
        assert missing.value.code == "provider_not_configured"
        assert "OPENAI_API_KEY" in missing.value.message

        # Without a model the offline echo provider answers.
        result = fabric.execute_provider(modality="text", input={"prompt": "Hello"})
        assert (result["provider_id"], result["output"]["text"]) == ("echo", "Hello")

        # Cost estimation
        estimate = fabric.estimate_cost(modality="text", input={"prompt": "Hello"})
        assert estimate["provider_id"] == "echo"
        assert estimate["estimated_cost_usd"] == 0.0
        assert estimate["currency"] == "USD"


def test_spec_providers_snippet_with_a_configured_provider(configured: LiveServer) -> None:
    with FabricClient(base_url=configured.base_url) as fabric:
        providers = fabric.providers()
        assert all(p["available"] for p in providers)

        # Direct provider execution
        result = fabric.execute_provider(
            modality="text",
            input={"prompt": "Hello"},
            model="gpt-4o",
        )
        assert result["provider_id"] == "openai"
        assert result["output"]["text"] == "fake: Hello"
        assert result["usage"]["input_tokens"] == 12

        # Cost estimation
        estimate = fabric.estimate_cost(modality="text", input={"prompt": "Hello"})
        assert estimate["provider_id"] == "echo"
        premium = fabric.estimate_cost("text", {"prompt": "Hello"}, tier="premium")
        assert (premium["provider_id"], premium["model"]) == ("openai", "gpt-4o-mini")
        assert premium["estimated_cost_usd"] > 0

        org = {"id": fabric.organization_id}
        usage = fabric.get_org_usage(org["id"])
        assert usage["total_executions"] == 1
        assert usage["by_provider"][0]["provider_id"] == "openai"
        assert usage["total_cost_usd"] == pytest.approx(0.0001)


def test_spec_usage_snippet(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        job = fabric.create_job(modality="text", input={"prompt": "count these words"})
        fabric.execute_provider(modality="embedding", input={"text": "vectors"})
        wait_done(fabric, job["id"])
        org = {"id": DEFAULT_ORG}

        # Organization usage
        usage = fabric.get_org_usage(org["id"])
        records = fabric.get_org_usage_records(org["id"])
        daily = fabric.get_org_usage_daily(org["id"])

        assert usage["organization_id"] == org["id"]
        assert (usage["total_executions"], usage["total_jobs"]) == (2, 1)
        assert usage["input_tokens"] == 4  # echo counts words: 3 + 1
        by_modality = {r["modality"]: r for r in records["items"]}
        assert sorted(by_modality) == ["embedding", "text"]
        assert by_modality["text"]["job_id"] == job["id"]
        assert by_modality["embedding"]["job_id"] is None
        assert daily[-1]["executions"] == 2
        assert sum(day["executions"] for day in daily) == 2

        walked = [r["id"] for r in fabric.iter_org_usage_records(org["id"], page_size=1)]
        assert walked == [r["id"] for r in records["items"]]


def test_spec_galleries_snippet(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        galleries = fabric.list_galleries(kind="portrait")
        gallery_id = galleries[0]["id"]
        items = fabric.list_gallery_items(gallery_id, tags=["professional"])

        assert galleries[0]["public"] is True
        assert len(items) == 2
        assert all("professional" in item["tags"] for item in items)

        mine = fabric.create_gallery("portrait", "Team headshots")
        fabric.add_gallery_item(mine["id"], url="https://example.com/ada.png", tags=["studio"])
        assert [g["name"] for g in fabric.list_galleries(kind="portrait")] == [
            "Sample portraits",
            "Team headshots",
        ]
        assert len(fabric.list_gallery_items(mine["id"], tags=["studio"])) == 1
        fabric.delete_gallery(mine["id"])


async def test_async_twins(server: LiveServer) -> None:
    async with AsyncFabricClient(base_url=server.base_url) as fabric:
        providers = await fabric.providers()
        assert {p["id"] for p in providers} == {"echo", "openai", "anthropic"}
        result = await fabric.execute_provider("text", {"prompt": "async hello"})
        assert result["output"]["text"] == "async hello"
        usage = await fabric.get_org_usage(DEFAULT_ORG)
        assert usage["total_executions"] == 1
        galleries = await fabric.list_galleries(kind="portrait")
        items = await fabric.list_gallery_items(galleries[0]["id"], tags=["casual", "studio"])
        assert [item["title"] for item in items] == ["Sample portrait: studio, casual"]


def test_streamed_answer_against_the_openai_fake(configured: LiveServer, llm: FakeLLM) -> None:
    with FabricClient(base_url=configured.base_url) as fabric:
        with fabric.execute_provider_stream("text", {"prompt": "Hi there"}, model="gpt-4o") as s:
            pieces = [delta["text"] for delta in s]

        assert pieces == ["fake: ", "Hi ", "there"]
        assert s.started is not None
        assert s.started["provider_id"] == "openai"
        assert s.result is not None
        assert s.result["output"]["text"] == "fake: Hi there"
        assert s.result["usage"]["input_tokens"] == 12
        assert llm.requests[-1].body["stream"] is True
        records = fabric.get_org_usage_records(DEFAULT_ORG)["items"]
        assert [(r["provider_id"], r["output_tokens"]) for r in records] == [("openai", 7)]


async def test_async_streamed_answer_from_echo(server: LiveServer) -> None:
    async with AsyncFabricClient(base_url=server.base_url) as fabric:
        stream = fabric.execute_provider_stream("text", {"prompt": "one two three"})
        text = "".join([delta["text"] async for delta in stream])
        assert text == "one two three"
        assert stream.result is not None
        assert stream.result["provider_id"] == "echo"

        with pytest.raises(FabricValidationError, match="OPENAI_API_KEY"):
            await fabric.execute_provider_stream("text", {"prompt": "x"}, model="gpt-4o")


def test_spec_budget_snippet(configured: LiveServer, llm: FakeLLM) -> None:
    with FabricClient(base_url=configured.base_url) as fabric:
        org = {"id": DEFAULT_ORG}
        assert fabric.get_budget(org["id"])["monthly_limit_usd"] is None

        # Half a gpt-4o call against the fake ($0.0001): the first call runs and overshoots.
        budget = fabric.set_budget(org["id"], 0.00005)
        assert (budget["monthly_limit_usd"], budget["exceeded"]) == (0.00005, False)
        fabric.execute_provider("text", {"prompt": "Hello"}, model="gpt-4o")

        with pytest.raises(FabricBudgetExceededError) as refused:
            fabric.execute_provider("text", {"prompt": "Hello"}, model="gpt-4o")
        assert (refused.value.status_code, refused.value.code) == (402, "budget_exceeded")
        assert refused.value.details is not None
        assert refused.value.details["monthly_limit_usd"] == 0.00005
        with pytest.raises(FabricBudgetExceededError):
            fabric.create_job(modality="text", input={"prompt": "Hi"}, tier="premium")
        stream = fabric.execute_provider_stream("text", {"prompt": "Hi"}, model="gpt-4o")
        with stream, pytest.raises(FabricBudgetExceededError):
            list(stream)
        assert len(llm.requests) == 1

        # Free calls still run.
        assert fabric.execute_provider("text", {"prompt": "Hello"})["provider_id"] == "echo"

        spending = fabric.get_org_spending(org["id"])
        by_provider = {p["provider_id"]: p for p in spending["by_provider"]}
        assert by_provider["openai"]["cost_usd"] == pytest.approx(0.0001)
        assert (by_provider["echo"]["executions"], by_provider["echo"]["cost_usd"]) == (1, 0.0)
        assert spending["by_day"][-1]["executions"] == 2
        budget = fabric.get_budget(org["id"])
        assert (budget["exceeded"], budget["remaining_usd"]) == (True, 0.0)
        assert budget["thresholds_reached"] == [0.5, 0.8, 1.0]

        assert fabric.set_budget(org["id"], None)["exceeded"] is False
        fabric.execute_provider("text", {"prompt": "Hello"}, model="gpt-4o")


async def test_async_budget_twins(configured: LiveServer) -> None:
    async with AsyncFabricClient(base_url=configured.base_url) as fabric:
        budget = await fabric.set_budget(DEFAULT_ORG, 0, alert_thresholds=[1.0])
        assert (budget["alert_thresholds"], budget["exceeded"]) == ([1.0], True)
        with pytest.raises(FabricBudgetExceededError):
            await fabric.execute_provider("text", {"prompt": "Hi"}, model="gpt-4o")
        assert (await fabric.get_budget(DEFAULT_ORG))["monthly_limit_usd"] == 0
        assert (await fabric.get_org_spending(DEFAULT_ORG))["spent_usd"] == 0
