"""What an operator's scrape shows after real work: jobs, workflows, providers, webhooks,
schedules, the queue, open streams and the database pool."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
from fake_llm import FakeLLM, Reply, openai_error
from metrics_helpers import Scrape, scrape
from schedule_helpers import at, harness
from server_helpers import eventually, wait_for_job
from webhook_helpers import create_webhook, running_app, settled_attempts, submit_job
from webhook_receiver import Receiver
from workflow_helpers import run_workflow

from fabric_server.jobs.service import JOB_WORK_KIND
from fabric_server.settings import Settings
from fabric_server.testing import LiveServer, fast_settings

NOOP = {"operation": "workflow.noop"}


async def test_jobs_and_provider_calls_are_counted_once_committed(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    job_id = await submit_job(client, input={"prompt": "count me"})
    await wait_for_job(client, job_id, "completed")
    failed = await submit_job(client, params={"fail": "bad input"})
    await wait_for_job(client, failed, "failed")
    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("fabric_jobs_started_total") >= 1
    assert grew("fabric_jobs_finished_total", outcome="completed") == 1
    assert grew("fabric_jobs_finished_total", outcome="failed") == 1
    assert grew("fabric_job_duration_seconds_count", outcome="completed") == 1
    assert grew("fabric_provider_calls_total", provider="echo", outcome="ok") == 1
    assert grew("fabric_provider_call_duration_seconds_count", provider="echo") >= 1
    assert grew("fabric_provider_tokens_total", provider="echo", direction="input") > 0
    assert grew("fabric_provider_tokens_total", provider="echo", direction="output") > 0
    assert job_id not in after.text
    assert failed not in after.text


async def test_provider_failures_and_prices_by_provider_model_and_outcome(
    database_url: str, tmp_path: Path, llm: FakeLLM
) -> None:
    settings = fast_settings(
        database_url,
        tmp_path,
        openai_api_key="sk-server-key",
        openai_base_url=llm.openai_base_url,
        provider_timeout_seconds=0.5,
        provider_retry_base_seconds=0.0,
    )
    async with running_app(settings) as (client, _):
        before = await scrape(client)
        body = {"modality": "text", "input": {"prompt": "Hello"}, "model": "gpt-4o"}
        llm.queue(Reply(429, openai_error("Rate limit reached"), {"Retry-After": "7"}))
        assert (await client.post("/v1/providers/execute", json=body)).status_code == 429
        answered = await client.post("/v1/providers/execute", json=body)
        assert answered.status_code == 200, answered.text
        after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    gpt = {"provider": "openai", "model": "gpt-4o"}
    assert grew("fabric_provider_calls_total", outcome="rate_limited", **gpt) == 1
    assert grew("fabric_provider_calls_total", outcome="ok", **gpt) == 1
    assert grew("fabric_provider_call_duration_seconds_count", **gpt) == 2
    assert grew("fabric_provider_cost_usd_total", **gpt) > 0


async def test_workflow_runs_and_nodes_by_operation(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    run = await run_workflow(
        client, [{"key": "a", **NOOP}, {"key": "b", **NOOP, "depends_on": ["a"]}]
    )
    assert run["status"] == "completed"
    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("fabric_workflow_runs_started_total") == 1
    assert grew("fabric_workflow_runs_finished_total", outcome="completed") == 1
    assert grew("fabric_workflow_run_duration_seconds_count", outcome="completed") == 1
    noop = {"operation": "workflow.noop"}
    assert grew("fabric_workflow_nodes_started_total", **noop) == 2
    assert grew("fabric_workflow_nodes_finished_total", outcome="completed", **noop) == 2
    assert grew("fabric_workflow_node_duration_seconds_count", outcome="completed", **noop) == 2
    assert run["id"] not in after.text


async def test_queue_depth_and_oldest_age_by_kind(settings: Settings) -> None:
    idle = settings.model_copy(update={"run_workers": False})
    async with running_app(idle) as (client, services):
        empty = await scrape(client)
        for kind in services.handlers:
            assert empty.value("fabric_queue_depth", kind=kind, status="queued") == 0
            assert empty.has("fabric_queue_oldest_age_seconds", kind=kind)
        first = await submit_job(client)
        await submit_job(client)

        async def waited() -> Scrape:
            return await scrape(client)

        # Nothing takes the jobs: both are queued, and the oldest has been waiting.
        seen = await eventually(
            waited, lambda s: s.value("fabric_queue_oldest_age_seconds", kind=JOB_WORK_KIND) > 0
        )
        assert seen.value("fabric_queue_depth", kind=JOB_WORK_KIND, status="queued") == 2
        assert seen.value("fabric_queue_depth", kind=JOB_WORK_KIND, status="running") == 0
        assert first not in seen.text


async def test_webhook_attempts_by_outcome_and_attempt(settings: Settings) -> None:
    async with running_app(settings) as (client, _):
        before = await scrape(client)
        with Receiver() as good:
            hook = await create_webhook(client, good.url, events=["job.completed"])
            await submit_job(client)
            await settled_attempts(client, hook["id"], 1)
        with Receiver(answer=lambda _: (500, {}, b"no")) as bad:
            failing = await create_webhook(client, bad.url, events=["job.completed"], max_retries=1)
            await submit_job(client)
            await settled_attempts(client, failing["id"], 1)
        after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    attempts = "fabric_webhook_delivery_attempts_total"
    assert grew(attempts, outcome="succeeded", attempt="1") >= 1
    assert grew(attempts, outcome="retrying", attempt="1") >= 1
    assert grew(attempts, outcome="failed", attempt="2") >= 1
    assert grew("fabric_webhook_delivery_duration_seconds_count", outcome="failed") >= 1


async def test_schedule_firings_are_counted(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    definition = await client.post(
        "/v1/workflow-definitions", json={"name": "nightly", "nodes": [{"key": "s", **NOOP}]}
    )
    assert definition.status_code == 201, definition.text
    created = await client.post(
        f"/v1/workflow-definitions/{definition.json()['data']['id']}/schedules",
        json={"cron_expression": "0 9 * * 1-5"},
    )
    assert created.status_code == 201, created.text
    fired = await client.post(f"/v1/schedules/{created.json()['data']['id']}/trigger")
    assert fired.status_code == 202, fired.text
    after = await scrape(client)
    firings = "fabric_schedule_firings_total"
    assert (
        after.value(firings, trigger="manual", outcome="fired")
        - before.value(firings, trigger="manual", outcome="fired")
        == 1
    )


async def test_missed_schedule_occurrences_are_counted(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 09:59:30")) as h:
        schedule = await h.create(await h.definition(), "0 * * * *")
        h.clock.set(at("2026-01-01 10:00"))
        before = await scrape(h.client)
        assert await h.tick() == 1
        h.clock.set(at("2026-01-01 13:30"))  # 11:00, 12:00 and 13:00 passed unseen
        assert await h.tick() == 0
        assert len(await h.history(schedule["id"])) == 4
        after = await scrape(h.client)

    firings = "fabric_schedule_firings_total"
    for outcome, count in (("fired", 1), ("missed", 3)):
        cron = {"trigger": "cron", "outcome": outcome}
        assert after.value(firings, **cron) - before.value(firings, **cron) == count


def test_open_streams_gauge_follows_streams(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path)
    with (
        LiveServer(settings) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):

        def open_streams() -> float:
            response = client.get("/metrics")
            assert response.status_code == 200
            return Scrape(response.text).value("fabric_sse_open_streams")

        before = open_streams()
        with client.stream("GET", "/v1/events/stream") as stream:
            assert stream.status_code == 200
            assert open_streams() == before + 1
        _poll(lambda: open_streams() == before)


async def test_database_pool_gauges(client: httpx.AsyncClient, settings: Settings) -> None:
    seen = await scrape(client)
    if settings.resolved_database_url.startswith("postgresql"):
        assert seen.value("fabric_db_pool_size") == 10
    # Both engines pool their connections: the size is kept, and none is stranded after
    # the scrape's own read.
    assert seen.value("fabric_db_pool_size") >= 1
    assert seen.value("fabric_db_pool_checked_out") >= 0


def _poll(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
