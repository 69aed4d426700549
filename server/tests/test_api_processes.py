"""`fabric-server serve --workers N`: N API processes share the port and the database, each
with its own caches, and stop together."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_helpers import ServerProcess
from sqlalchemy import func, select

from fabric_server.app import start
from fabric_server.orgs.models import Organization
from fabric_server.services import build_services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID
from fabric_server.testing import fast_settings

JOB = {"modality": "text", "input": {"prompt": "hi"}}


@pytest.fixture
def two_processes(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(database_url, tmp_path, FABRIC_API_PROCESSES="2")
    try:
        yield server.start()
    finally:
        server.close()


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


async def test_two_api_processes_serve_one_port(two_processes: ServerProcess) -> None:
    assert two_processes.process is not None
    api = children_of(two_processes.process.pid)
    assert len(api) >= 2  # (the spawn start method adds a small resource tracker too)

    async with httpx.AsyncClient(base_url=two_processes.base_url, timeout=30) as http:
        created = await asyncio.gather(*(http.post("/v1/jobs", json=JOB) for _ in range(40)))
        ids = [r.json()["data"]["id"] for r in created]
        done = await asyncio.gather(
            *(http.get(f"/v1/jobs/{job_id}", params={"wait": 30}) for job_id in ids)
        )
    assert {r.json()["data"]["status"] for r in done} == {"completed"}

    two_processes.process.send_signal(signal.SIGTERM)
    assert two_processes.process.wait(timeout=30) == 0
    logs = two_processes.logs()
    if "Traceback" in logs:
        at = logs.index("Traceback")
        raise AssertionError(logs[max(0, at - 2000) : at + 6000])


async def test_processes_starting_together_seed_the_dev_data_once(
    database_url: str, tmp_path: Path
) -> None:
    # Two API processes start at once on one database: both must come up (the dev seed
    # checks then inserts, so they take turns).
    if database_url.startswith("sqlite"):
        pytest.skip("several API processes are for PostgreSQL; SQLite has one")
    settings = fast_settings(database_url, tmp_path)
    first, second = build_services(settings), build_services(settings)
    try:
        await asyncio.gather(start(first), start(second))
        async with first.db.read() as session:
            orgs = await session.scalar(
                select(func.count())
                .select_from(Organization)
                .where(Organization.id == DEFAULT_ORGANIZATION_ID)
            )
        assert orgs == 1
    finally:
        await first.db.dispose()
        await second.db.dispose()
