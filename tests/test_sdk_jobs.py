"""The SDK's job surface, exactly as the product spec writes it, against a real server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from fabric_platform import (
    AsyncFabricClient,
    FabricClient,
    FabricConflictError,
    FabricConnectionError,
    FabricNotFoundError,
    FabricValidationError,
)
from fabric_server.testing import LiveServer, fast_settings, free_port


def wait_done(fabric: FabricClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        job = dict(fabric.get_job(job_id))
        if job["status"] in ("completed", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.02)


def test_spec_jobs_snippet(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        status = fabric.health_check()
        assert status["status"] == "ok"

        job = fabric.create_job(
            modality="text",
            input={"prompt": "Summarize this article"},
            idempotency_key="unique-key-123",
        )
        job = fabric.get_job(job["id"])
        jobs = fabric.list_jobs(limit=20, cursor=None)
        assert [j["id"] for j in jobs["items"]] == [job["id"]]
        assert jobs["next_cursor"] is None

        done = wait_done(fabric, job["id"])
        assert done["output"]["text"] == "Summarize this article"
        usage = fabric.get_job_usage(job["id"])
        assert usage["job_id"] == job["id"]
        assert usage["input_tokens"] == 3

        again = fabric.create_job(
            modality="text",
            input={"prompt": "Summarize this article"},
            idempotency_key="unique-key-123",
        )
        assert again["id"] == job["id"]


def test_stream_job_events_replays_then_follows_live(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        job = fabric.create_job(modality="text", input={"prompt": "hi"}, params={"delay_ms": 300})
        kinds = [event["kind"] for event in fabric.stream_job_events(job["id"])]
    assert kinds == ["job.created", "job.started", "job.completed"]


def test_stream_reconnects_across_server_connection_limits(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path, sse_max_connection_seconds=0.2)
    with LiveServer(settings) as live, FabricClient(base_url=live.base_url) as fabric:
        job = fabric.create_job(modality="text", input={"prompt": "x"}, params={"delay_ms": 1200})
        events = list(fabric.stream_job_events(job["id"]))
    assert [e["kind"] for e in events] == ["job.created", "job.started", "job.completed"]
    assert len({e["id"] for e in events}) == 3


def test_iter_jobs_walks_every_page(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        created = [
            fabric.create_job(modality="embedding", input={"text": f"t{i}"})["id"] for i in range(7)
        ]
        walked = [job["id"] for job in fabric.iter_jobs(page_size=3)]
    assert walked == list(reversed(created))


def test_server_errors_map_to_typed_exceptions(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        with pytest.raises(FabricNotFoundError) as missing:
            fabric.get_job("00000000-0000-0000-0000-00000000dead")
        assert missing.value.status_code == 404
        assert missing.value.code == "not_found"
        assert missing.value.request_id.startswith("req_")

        with pytest.raises(FabricValidationError) as invalid:
            fabric.create_job(modality="smell", input={"prompt": "x"})
        assert invalid.value.code == "validation_failed"

        fabric.create_job(modality="text", input={"prompt": "a"}, idempotency_key="k")
        with pytest.raises(FabricConflictError):
            fabric.create_job(modality="text", input={"prompt": "b"}, idempotency_key="k")


def test_unreachable_server_is_a_connection_error() -> None:
    port = free_port()
    fabric = FabricClient(base_url=f"http://127.0.0.1:{port}", max_retries=0)
    with fabric, pytest.raises(FabricConnectionError):
        fabric.health_check()


async def test_async_client_twin(server: LiveServer) -> None:
    async with AsyncFabricClient(base_url=server.base_url) as fabric:
        assert (await fabric.health_check())["status"] == "ok"
        job = await fabric.create_job(modality="text", input={"prompt": "async"})
        kinds = [event["kind"] async for event in fabric.stream_job_events(job["id"])]
        assert kinds[-1] == "job.completed"
        fetched = await fabric.get_job(job["id"])
        assert fetched["status"] == "completed"
        assert fetched["output"]["text"] == "async"
        page = await fabric.list_jobs(limit=1)
        assert page["items"][0]["id"] == job["id"]
        ids = [j["id"] async for j in fabric.iter_jobs(page_size=1)]
        assert ids == [job["id"]]
        assert (await fabric.get_job_usage(job["id"]))["provider_id"] == "echo"
