"""Long waits (`?wait=` on job and run reads) and batch submission (`POST /v1/jobs/batch`)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
from server_helpers import assert_error, eventually
from sqlalchemy import func, select

from fabric_server.jobs.models import Job
from fabric_server.services import Services
from fabric_server.testing import LiveServer

SLOW = {"modality": "text", "input": {"prompt": "slow"}, "params": {"delay_ms": 400}}
STUCK = {"modality": "text", "input": {"prompt": "stuck"}, "params": {"delay_ms": 30_000}}


async def submit(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["data"]["id"]
    return job_id


async def test_a_long_wait_answers_when_the_job_completes(client: httpx.AsyncClient) -> None:
    job_id = await submit(client, SLOW)

    response = await client.get(f"/v1/jobs/{job_id}", params={"wait": 30})

    assert response.status_code == 200
    job = response.json()["data"]
    assert job["status"] == "completed"
    assert job["output"]["text"] == "slow"


async def test_a_long_wait_answers_the_running_job_when_time_is_up(
    client: httpx.AsyncClient,
) -> None:
    job_id = await submit(client, STUCK)

    response = await client.get(f"/v1/jobs/{job_id}", params={"wait": 0.2})

    assert response.status_code == 200
    assert response.json()["data"]["status"] in ("pending", "started")


async def test_a_long_wait_on_a_finished_job_answers_at_once(client: httpx.AsyncClient) -> None:
    job_id = await submit(client, {"modality": "text", "input": {"prompt": "quick"}})
    await client.get(f"/v1/jobs/{job_id}", params={"wait": 30})

    response = await client.get(f"/v1/jobs/{job_id}", params={"wait": 30})

    assert response.json()["data"]["status"] == "completed"


async def test_a_long_wait_checks_access_like_a_read(client: httpx.AsyncClient) -> None:
    org = await client.post("/v1/organizations", json={"slug": "acme", "name": "Acme"})
    job_id = await submit(client, {**SLOW, "organization_id": org.json()["data"]["id"]})
    stranger = {"X-Principal-Id": "00000000-0000-0000-0000-00000000dead"}

    response = await client.get(f"/v1/jobs/{job_id}", params={"wait": 5}, headers=stranger)

    assert_error(response, 404, "not_found")
    assert_error(await client.get("/v1/jobs/nope", params={"wait": 5}), 404, "not_found")
    assert_error(
        await client.get(f"/v1/jobs/{job_id}", params={"wait": -1}), 400, "validation_failed"
    )


async def test_a_client_leaving_a_long_wait_leaves_nothing_behind(
    live_server: LiveServer,
) -> None:
    services: Services = live_server.app.state.services
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        job_id = await submit(client, STUCK)
    host, port = "127.0.0.1", live_server.port
    with socket.create_connection((host, port)) as sock:
        sock.sendall(f"GET /v1/jobs/{job_id}?wait=60 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await eventually(
            lambda: asyncio.sleep(0, len(services.hub._by_job.get(job_id, ()))), lambda n: n == 1
        )
    # The connection is gone: the wait ends and its subscription with it.
    await eventually(lambda: asyncio.sleep(0, job_id in services.hub._by_job), lambda n: not n)


async def test_a_long_wait_on_a_run(client: httpx.AsyncClient) -> None:
    nodes = [{"key": "pause", "operation": "workflow.delay", "config": {"seconds": 0.3}}]
    created = await client.post("/v1/workflow-definitions", json={"name": "w", "nodes": nodes})
    wf_id = created.json()["data"]["id"]
    run = (await client.post("/v1/workflow-runs", json={"workflow_definition_id": wf_id})).json()
    run_id = run["data"]["id"]
    await client.post(f"/v1/workflow-runs/{run_id}/start", json={})

    waited = await client.get(f"/v1/workflow-runs/{run_id}", params={"wait": 0.01})
    assert waited.json()["data"]["status"] in ("pending", "running")

    for path in (f"/v1/workflow-runs/{run_id}", f"/v1/workflows/runs/{run_id}"):
        response = await client.get(path, params={"wait": 30})
        assert response.status_code == 200
        assert response.json()["data"]["status"] == "completed"


async def test_a_batch_creates_every_job_in_order(
    client: httpx.AsyncClient, services: Services
) -> None:
    jobs = [
        {"modality": "text", "input": {"prompt": f"job {n}"}, "idempotency_key": f"k{n}"}
        for n in range(5)
    ]

    response = await client.post("/v1/jobs/batch", json={"jobs": jobs})

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["created"] == 5
    assert [j["input"]["prompt"] for j in data["items"]] == [f"job {n}" for n in range(5)]
    for item in data["items"]:
        done = await client.get(f"/v1/jobs/{item['id']}", params={"wait": 30})
        assert done.json()["data"]["status"] == "completed"

    again = await client.post("/v1/jobs/batch", json={"jobs": jobs})  # a retried batch
    assert again.json()["data"]["created"] == 0
    assert [j["id"] for j in again.json()["data"]["items"]] == [j["id"] for j in data["items"]]


async def test_a_batch_with_one_bad_job_creates_nothing(
    client: httpx.AsyncClient, services: Services
) -> None:
    jobs = [
        {"modality": "text", "input": {"prompt": "fine"}},
        {"modality": "text", "input": {"prompt": "no such model"}, "model": "no-such-model"},
    ]

    response = await client.post("/v1/jobs/batch", json={"jobs": jobs})

    body = assert_error(response, 422, "validation_failed")
    assert body["error"]["details"]["index"] == 1
    assert body["error"]["message"].startswith("Job 1 of the batch: ")
    async with services.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 0


async def test_a_batch_reusing_a_key_for_another_request_creates_nothing(
    client: httpx.AsyncClient, services: Services
) -> None:
    await client.post(
        "/v1/jobs", json={"modality": "text", "input": {"prompt": "a"}, "idempotency_key": "k"}
    )
    jobs = [
        {"modality": "text", "input": {"prompt": "new"}},
        {"modality": "text", "input": {"prompt": "different"}, "idempotency_key": "k"},
    ]

    body = assert_error(await client.post("/v1/jobs/batch", json={"jobs": jobs}), 409, "conflict")

    assert body["error"]["details"]["index"] == 1
    async with services.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 1


async def test_a_batch_is_bounded(client: httpx.AsyncClient) -> None:
    one = {"modality": "text", "input": {"prompt": "x"}}
    assert_error(await client.post("/v1/jobs/batch", json={"jobs": []}), 400, "validation_failed")
    response = await client.post("/v1/jobs/batch", json={"jobs": [one] * 1001})
    assert_error(response, 400, "validation_failed")
    twice = [{**one, "idempotency_key": "same"}] * 2
    repeated = await client.post("/v1/jobs/batch", json={"jobs": twice})
    assert_error(repeated, 422, "validation_failed")
