"""`GET /metrics` with several API processes on one port: with `PROMETHEUS_MULTIPROC_DIR`,
every scrape adds up all processes, whichever one answers, and a start forgets earlier runs."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_helpers import ServerProcess

JOB = {"modality": "text", "input": {"prompt": "count me"}}
CREATED = re.compile(
    r'^fabric_http_requests_total\{method="POST",route="/v1/jobs",status="201"\} (\S+)$', re.M
)


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    # A value left by an earlier run: the new start must not add it in.
    (directory / "counter_999999.db").write_bytes(b"\0" * 64)
    return directory


@pytest.fixture
def two_processes(database_url: str, tmp_path: Path, shared_dir: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(
        database_url,
        tmp_path,
        FABRIC_API_PROCESSES="2",
        PROMETHEUS_MULTIPROC_DIR=str(shared_dir),
    )
    try:
        yield server.start()
    finally:
        server.close()


def _writers(directory: Path) -> set[str]:
    """The process ids that wrote counters."""
    return {path.stem.rsplit("_", 1)[1] for path in directory.glob("counter_*.db")}


def _created(body: str) -> float:
    found = CREATED.search(body)
    return float(found.group(1)) if found else 0.0


async def test_every_scrape_counts_all_api_processes(
    two_processes: ServerProcess, shared_dir: Path
) -> None:
    assert not (shared_dir / "counter_999999.db").exists()
    limits = httpx.Limits(max_keepalive_connections=0)  # a new connection per request
    async with httpx.AsyncClient(
        base_url=two_processes.base_url, timeout=30, limits=limits
    ) as http:
        answers = await asyncio.gather(*(http.post("/v1/jobs", json=JOB) for _ in range(40)))
        assert {a.status_code for a in answers} == {201}
        scrapes = [await http.get("/metrics") for _ in range(6)]
    # Both processes served requests (each writes its own files)...
    assert len(_writers(shared_dir)) >= 2, _writers(shared_dir)
    # ...and every scrape, whichever process answered it, counts all 40.
    assert [_created(s.text) for s in scrapes] == [40.0] * 6
