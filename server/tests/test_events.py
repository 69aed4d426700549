"""The global event stream, cross-process wake-ups on PostgreSQL, and event retention."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import WorkerProcesses, eventually

from fabric_server.access.models import Membership
from fabric_server.events.retention import prune_events
from fabric_server.orgs.models import Organization
from fabric_server.services import Services
from fabric_server.testing import LiveServer, fast_settings


async def collect(
    client: httpx.AsyncClient,
    path: str,
    frames: list[dict[str, Any]],
    headers: dict[str, str] | None = None,
) -> None:
    async with client.stream("GET", path, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if not line:
                if "data" in fields:
                    frames.append({"id": fields["id"], **json.loads(fields["data"])})
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value


async def submit(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **body: Any
) -> str:
    payload = {"modality": "text", "input": {"prompt": "hi"}, **body}
    response = await client.post("/v1/jobs", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["data"]["id"]
    return job_id


async def frames_until(frames: list[dict[str, Any]], kind: str, job_id: str) -> None:
    async def probe() -> list[dict[str, Any]]:
        return frames

    await eventually(probe, lambda fs: any(f["kind"] == kind and f["job_id"] == job_id for f in fs))


async def test_global_stream_is_live_and_scoped_to_your_organizations(
    live_server: LiveServer, services: Services
) -> None:
    outsider = str(uuid.uuid4())
    async with services.db.write() as session:
        org = Organization(slug="other", name="Other")
        session.add(org)
        await session.flush()
        session.add(Membership(organization_id=org.id, principal_id=outsider, role="owner"))
        other_org = org.id

    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        before = await submit(client)  # history: not replayed on a fresh connection
        await eventually(
            lambda: client.get(f"/v1/jobs/{before}"),
            lambda r: r.json()["data"]["status"] == "completed",
        )
        frames: list[dict[str, Any]] = []
        reader = asyncio.create_task(collect(client, "/v1/events/stream", frames))
        await eventually(
            lambda: asyncio.sleep(0, live_server.app.state.services.hub._subscribers), bool
        )
        theirs = await submit(
            client, headers={"x-principal-id": outsider}, organization_id=other_org
        )
        mine = await submit(client)
        await frames_until(frames, "job.completed", mine)
        reader.cancel()

    job_ids = {f["job_id"] for f in frames}
    assert mine in job_ids
    assert before not in job_ids
    assert theirs not in job_ids  # another organization's events never reach this caller
    assert [f["kind"] for f in frames if f["job_id"] == mine] == [
        "job.created",
        "job.started",
        "job.completed",
    ]


async def test_global_stream_filters_kinds_and_resumes(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        first = await submit(client)
        all_frames: list[dict[str, Any]] = []
        reader = asyncio.create_task(collect(client, "/v1/events/stream", all_frames))
        await eventually(
            lambda: asyncio.sleep(0, live_server.app.state.services.hub._subscribers), bool
        )
        second = await submit(client)
        await frames_until(all_frames, "job.completed", second)
        reader.cancel()

        # Resuming after the first frame we saw replays exactly what followed it.
        resumed: list[dict[str, Any]] = []
        path = "/v1/events/stream?kinds=job.completed"
        headers = {"Last-Event-ID": all_frames[0]["id"]}
        reader = asyncio.create_task(collect(client, path, resumed, headers))
        await frames_until(resumed, "job.completed", second)
        reader.cancel()
    expected = [f["id"] for f in all_frames[1:] if f["kind"] == "job.completed"]
    assert [f["id"] for f in resumed] == expected
    assert first != second


async def test_prune_removes_only_old_events(client: httpx.AsyncClient, services: Services) -> None:
    job_id = await submit(client)
    await eventually(
        lambda: client.get(f"/v1/jobs/{job_id}"),
        lambda r: r.json()["data"]["status"] == "completed",
    )
    assert await prune_events(services.db, dt.datetime.now(dt.UTC) - dt.timedelta(days=1)) == 0
    removed = await prune_events(services.db, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    assert removed == 3
    replay = await client.get(f"/v1/jobs/{job_id}")
    assert replay.status_code == 200  # the job itself is untouched


@pytest.fixture
def api_only(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    if not database_url.startswith("postgresql"):
        pytest.skip("cross-process notifications are a PostgreSQL feature")
    # Polling is effectively off: only LISTEN/NOTIFY can wake this process's readers.
    settings = fast_settings(
        database_url, tmp_path / "api", run_workers=False, sse_poll_seconds=3600
    )
    with LiveServer(settings) as server:
        yield server


async def test_notifications_cross_processes_on_postgresql(
    api_only: LiveServer, database_url: str, tmp_path: Path
) -> None:
    workers = WorkerProcesses(database_url, tmp_path, FABRIC_WORKER_POLL_INTERVAL="3600")
    try:
        workers.start()
        async with httpx.AsyncClient(base_url=api_only.base_url, timeout=30) as client:
            # The worker process only hears about this job through NOTIFY fabric_work, and
            # the API process only sees the worker's events through NOTIFY fabric_events.
            job_id = await submit(client)
            frames: list[dict[str, Any]] = []
            await asyncio.wait_for(collect(client, f"/v1/jobs/{job_id}/events", frames), 30)
    except BaseException:
        print(workers.logs())
        raise
    finally:
        workers.close()
    assert [f["kind"] for f in frames] == ["job.created", "job.started", "job.completed"]
