"""`kill -9` a worker mid-job: another worker finishes it, exactly once, and no event is lost.

A real API (uvicorn, no in-process workers) and real `fabric-server worker` processes share
one database, as in the scaled-out deployment.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import WorkerProcesses, eventually
from sqlalchemy import select

from fabric_server.db.database import Database
from fabric_server.engine.models import WorkItem
from fabric_server.events.models import Event
from fabric_server.settings import Settings, to_async_url
from fabric_server.testing import LiveServer, fast_settings
from fabric_server.usage.models import UsageRecord

JOB_SECONDS = 4.0
LEASE_SECONDS = 1.5


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The API runs no workers of its own: only the worker processes execute jobs."""
    return fast_settings(database_url, tmp_path / "api", run_workers=False)


@pytest.fixture
def workers(database_url: str, tmp_path: Path) -> Iterator[WorkerProcesses]:
    processes = WorkerProcesses(
        database_url,
        tmp_path,
        FABRIC_LEASE_SECONDS=str(LEASE_SECONDS),
        FABRIC_HEARTBEAT_SECONDS="0.3",
        FABRIC_WORKER_POLL_INTERVAL="0.05",
    )
    try:
        yield processes
    finally:
        processes.close()


async def read_job_stream(api: httpx.AsyncClient, job_id: str, seen: list[tuple[str, str]]) -> None:
    """Collect `(id, kind)` of every SSE frame until the stream ends after the terminal event."""
    timeout = httpx.Timeout(10, read=30)
    async with api.stream("GET", f"/v1/jobs/{job_id}/events", timeout=timeout) as response:
        assert response.status_code == 200
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if not line:
                if "id" in fields:
                    seen.append((fields["id"], fields["event"]))
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value


async def get_job(api: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()["data"]
    return job


async def test_killed_worker_loses_no_job_and_it_completes_exactly_once(
    live_server: LiveServer, workers: WorkerProcesses, database_url: str
) -> None:
    first = workers.start()
    seen: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as api:
        body = {
            "modality": "text",
            "input": {"prompt": "survive the crash"},
            "params": {"delay_ms": int(JOB_SECONDS * 1000)},
        }
        created = await api.post("/v1/jobs", json=body)
        assert created.status_code == 201, created.text
        job_id = created.json()["data"]["id"]
        stream = asyncio.create_task(read_job_stream(api, job_id, seen))

        async def streamed() -> list[tuple[str, str]]:
            return seen

        try:
            await eventually(
                lambda: get_job(api, job_id), lambda job: job["status"] == "started", 20
            )
            # The SSE client is connected and has seen the first start before the crash.
            await eventually(streamed, lambda frames: len(frames) >= 2, 10)

            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=10) == -signal.SIGKILL
            assert (await get_job(api, job_id))["status"] == "started"
            workers.start()

            job = await eventually(
                lambda: get_job(api, job_id), lambda job: job["status"] != "started", 30
            )
            await asyncio.wait_for(stream, 10)
        except BaseException:
            stream.cancel()
            print(workers.logs())
            raise
        usage = (await api.get(f"/v1/jobs/{job_id}/usage")).json()["data"]

    assert job["status"] == "completed", job
    assert job["output"]["text"] == "survive the crash"
    assert job["attempts"] == 2

    db = Database(to_async_url(database_url))
    try:
        async with db.read() as session:
            events = list(
                await session.scalars(
                    select(Event).where(Event.job_id == job_id).order_by(Event.seq)
                )
            )
            usage_rows = list(
                await session.scalars(select(UsageRecord).where(UsageRecord.job_id == job_id))
            )
            item = await session.scalar(select(WorkItem).where(WorkItem.ref_id == job_id))
    finally:
        await db.dispose()

    kinds = [event.kind for event in events]
    assert Counter(kinds) == {"job.created": 1, "job.started": 2, "job.completed": 1}
    assert kinds[0] == "job.created"
    assert kinds[-1] == "job.completed"
    assert [e.payload["attempt"] for e in events if e.kind == "job.started"] == [1, 2]
    assert len(usage_rows) == 1
    assert len(usage["records"]) == 1
    assert item is not None
    assert (item.status, item.attempts) == ("done", 2)

    # Nothing was lost or reordered for the client that watched through the crash.
    assert seen == [(event.id, event.kind) for event in events]
