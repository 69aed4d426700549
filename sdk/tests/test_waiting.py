"""Waiting for jobs and runs: one long wait per read where the server holds reads, polling
where it does not; batch submission."""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx
import pytest

from fabric_platform import AsyncFabricClient, FabricClient, FabricWaitTimeout

from .helpers import Script, ok
from .test_auth import Clock

MakeClient = Callable[..., FabricClient]
MakeAsyncClient = Callable[..., AsyncFabricClient]
DEFAULT_ORG = "00000000-0000-0000-0000-000000000010"


def job(status: str) -> dict[str, Any]:
    return {"id": "job-1", "status": status}


class HoldingServer:
    """Answers from a script, the clock moving on by the `wait` each read asked for (as a
    server that holds reads until the time is up would make it)."""

    def __init__(self, clock: Clock, *answers: dict[str, Any]) -> None:
        self.clock = clock
        self.script = Script(*(ok(a) for a in answers))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.clock.now += float(request.url.params.get("wait", 0))
        return self.script(request)


def test_wait_for_job_holds_each_read_on_the_server(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    clock = Clock()
    server = HoldingServer(clock, job("started"), job("completed"))
    client = make_client(server)
    client._clock = clock

    done = client.wait_for_job("job-1", timeout=120)

    assert done["status"] == "completed"
    assert sleeps == []  # no polling: the server answered when the job ended
    first, second = server.script.requests
    assert first.url.path == "/v1/jobs/job-1"
    assert first.url.params["wait"] == "50.0"
    assert second.url.params["wait"] == "50.0"
    assert first.extensions["timeout"]["read"] == 30.0 + 50.0  # the hold plus the timeout


def test_wait_for_job_polls_a_server_that_answers_at_once(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    script = Script(ok(job("pending")), ok(job("started")), ok(job("failed")))
    client = make_client(script)

    assert client.wait_for_job("job-1", poll_interval=0.5)["status"] == "failed"

    assert sleeps == [0.5, 0.5]
    assert "wait" in script.requests[0].url.params  # asked once, then plain reads
    assert all("wait" not in r.url.params for r in script.requests[1:])


def test_wait_for_job_times_out(make_client: MakeClient) -> None:
    clock = Clock()
    client = make_client(HoldingServer(clock, job("started")))
    client._clock = clock

    with pytest.raises(FabricWaitTimeout) as info:
        client.wait_for_job("job-1", timeout=80)

    assert isinstance(info.value, TimeoutError)
    assert (info.value.job_id, info.value.last_status) == ("job-1", "started")
    assert clock.now == 1_000_080.0  # held 50, then the 30 left


def test_create_job_with_wait_returns_the_finished_job(make_client: MakeClient) -> None:
    clock = Clock()
    server = HoldingServer(clock, job("pending"), job("completed"))
    client = make_client(server)
    client._clock = clock

    done = client.create_job(modality="text", input={"prompt": "hi"}, wait=10)

    assert done["status"] == "completed"
    created, waited = server.script.requests
    assert (created.method, created.url.path) == ("POST", "/v1/jobs")
    assert waited.url.params["wait"] == "10.0"


def test_create_job_with_wait_returns_the_job_as_it_is_when_time_runs_out(
    make_client: MakeClient,
) -> None:
    clock = Clock()
    client = make_client(HoldingServer(clock, job("pending"), job("started")))
    client._clock = clock

    assert client.create_job(modality="text", input={"prompt": "hi"}, wait=5)["status"] == (
        "started"
    )


def test_create_jobs_sends_one_batch(make_client: MakeClient) -> None:
    script = Script(ok({"items": [job("pending"), job("pending")], "created": 2}, status=201))
    client = make_client(script)
    jobs = [
        {"modality": "text", "input": {"prompt": "a"}},
        {"modality": "embedding", "input": {"text": "b"}, "priority": 5},
    ]

    created = client.create_jobs(jobs)

    assert [j["status"] for j in created] == ["pending", "pending"]
    request = script.last
    assert (request.method, request.url.path) == ("POST", "/v1/jobs/batch")
    assert json.loads(request.content) == {"jobs": jobs, "organization_id": DEFAULT_ORG}
    assert "idempotency-key" not in request.headers  # not safe to send twice


def test_create_jobs_is_retried_when_every_job_has_a_key(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    script = Script(httpx.Response(503), ok({"items": [job("pending")], "created": 1}))
    client = make_client(script)

    client.create_jobs([{"modality": "text", "input": {"prompt": "a"}, "idempotency_key": "k"}])

    assert len(script.requests) == 2
    assert script.requests[0].headers["idempotency-key"].startswith("batch-")


async def test_async_wait_for_job_and_create_jobs(make_async_client: MakeAsyncClient) -> None:
    clock = Clock()
    server = HoldingServer(
        clock, {"items": [job("pending")], "created": 1}, job("started"), job("completed")
    )
    client = make_async_client(server)
    client._clock = clock

    (created,) = await client.create_jobs([{"modality": "text", "input": {"prompt": "a"}}])
    done = await client.wait_for_job(created["id"])

    assert done["status"] == "completed"
    assert [r.url.params.get("wait") for r in server.script.requests[1:]] == ["50.0", "50.0"]


def test_wait_for_run_holds_each_read_on_the_server(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    clock = Clock()
    server = HoldingServer(clock, {"id": "run-1", "status": "running"}, {"status": "completed"})
    client = make_client(server)
    client._clock = clock

    assert client.wait_for_run("run-1")["status"] == "completed"
    assert sleeps == []
    assert [r.url.params["wait"] for r in server.script.requests] == ["50.0", "50.0"]
