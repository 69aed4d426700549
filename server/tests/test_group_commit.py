"""Group commit: concurrent writes share commits, yet each stands or falls on its own, and
nothing acknowledged is ever lost."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import ServerProcess, eventually
from sqlalchemy import select

from fabric_server.db.database import Database
from fabric_server.db.writer import Tx
from fabric_server.events.models import Event
from fabric_server.jobs.models import Job
from fabric_server.services import Services
from fabric_server.settings import to_async_url
from fabric_server.testing import LiveServer, fast_settings

JOB = {"modality": "text", "input": {"prompt": "hello"}}


async def kinds_and_payloads(services: Services, kind: str) -> list[Any]:
    async with services.db.read() as session:
        rows = await session.scalars(select(Event).where(Event.kind == kind).order_by(Event.seq))
        return [row.payload for row in rows]


async def test_a_failing_write_fails_alone_and_the_rest_of_its_batch_commits(
    services: Services,
) -> None:
    def good(n: int) -> Any:
        def unit(tx: Tx) -> int:
            services.events.record_in(tx, "test.unit", organization_id=None, payload={"n": n})
            return n

        return unit

    def bad(tx: Tx) -> int:
        services.events.record_in(tx, "test.unit", organization_id=None, payload={"n": -1})
        raise ValueError("this write is refused")

    units = [good(1), good(2), bad, good(3), good(4)]
    # Queued together, before the writer runs: they share one batch.
    results = await asyncio.gather(
        *(services.writer.write(unit) for unit in units), return_exceptions=True
    )

    assert results[:2] == [1, 2]
    assert results[3:] == [3, 4]
    assert isinstance(results[2], ValueError)
    payloads = await kinds_and_payloads(services, "test.unit")
    assert sorted(p["n"] for p in payloads) == [1, 2, 3, 4]  # nothing of the failed one


async def test_concurrent_writes_share_commits(services: Services) -> None:
    def unit(tx: Tx) -> None:
        services.events.record_in(tx, "test.unit", organization_id=None)

    before = services.writer.batches
    await asyncio.gather(*(services.writer.write(unit) for _ in range(50)))

    assert len(await kinds_and_payloads(services, "test.unit")) == 50
    assert services.writer.batches - before < 50


async def test_concurrent_requests_with_one_idempotency_key_create_one_job(
    client: httpx.AsyncClient, services: Services
) -> None:
    body = {**JOB, "idempotency_key": "same-key"}
    responses = await asyncio.gather(*(client.post("/v1/jobs", json=body) for _ in range(20)))

    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["data"]["id"] for r in responses}) == 1
    async with services.db.read() as session:
        count = len((await session.scalars(select(Job.id))).all())
    assert count == 1


async def test_two_servers_racing_on_one_idempotency_key_create_one_job(
    database_url: str, tmp_path: Path
) -> None:
    with (
        LiveServer(fast_settings(database_url, tmp_path / "a")) as first,
        LiveServer(fast_settings(database_url, tmp_path / "b")) as second,
    ):
        body = {**JOB, "idempotency_key": "raced"}
        async with httpx.AsyncClient(timeout=30) as http:
            # One request each first: two apps in one process must not build their routes at
            # the same moment (the framework's warning filters are process-wide).
            for server in (first, second):
                assert (await http.get(f"{server.base_url}/v1/jobs")).status_code == 200
            responses = await asyncio.gather(
                *(
                    http.post(f"{server.base_url}/v1/jobs", json=body)
                    for _ in range(10)
                    for server in (first, second)
                )
            )
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert len({r.json()["data"]["id"] for r in responses}) == 1
    assert [r.status_code for r in responses].count(201) == 1


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        database_url,
        tmp_path,
        FABRIC_LEASE_SECONDS="1.5",
        FABRIC_HEARTBEAT_SECONDS="0.3",
        FABRIC_WORKER_POLL_INTERVAL="0.05",
    )
    try:
        yield process
    finally:
        process.close()


async def test_kill_9_during_batches_loses_no_acknowledged_job(
    server: ServerProcess, database_url: str
) -> None:
    server.start()
    acknowledged: list[str] = []
    stop = asyncio.Event()

    async def submitter(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            try:
                response = await http.post(f"{server.base_url}/v1/jobs", json=JOB)
            except httpx.HTTPError:
                return  # the server died under us: this one was never acknowledged
            if response.status_code == 201:
                acknowledged.append(response.json()["data"]["id"])

    async with httpx.AsyncClient(timeout=10) as http:
        submitters = [asyncio.create_task(submitter(http)) for _ in range(8)]
        await eventually(lambda: asyncio.sleep(0, len(acknowledged)), lambda n: n >= 60)
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        stop.set()
        await asyncio.gather(*submitters)

    server.process.wait(timeout=10)
    db = Database(to_async_url(database_url))
    try:
        async with db.read() as session:
            stored = set((await session.scalars(select(Job.id))).all())
    finally:
        await db.dispose()
    assert set(acknowledged) <= stored

    # After a restart every acknowledged job runs to completion (leases of the dead process
    # expire and are reclaimed).
    server.start()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:

        async def statuses() -> set[str]:
            found = set()
            for job_id in acknowledged:
                found.add((await http.get(f"/v1/jobs/{job_id}")).json()["data"]["status"])
            return found

        assert await eventually(statuses, lambda s: s == {"completed"}, timeout=60) == {"completed"}
