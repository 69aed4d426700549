"""`fabric-server serve` and `worker` as real processes: stopping the API with open event
streams and a running job, dev mode on a network address, the worker's probes."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import cli_env, start_cli, stop_process, wait_until_answering
from server_helpers import wait_for_job
from sqlalchemy import select

from fabric_server.db.database import Database
from fabric_server.engine.models import WorkItem
from fabric_server.events.models import Event
from fabric_server.jobs.models import Job
from fabric_server.settings import to_async_url
from fabric_server.testing import free_port

GRACE_SECONDS = 6


class StreamReader(threading.Thread):
    """Reads an SSE stream to its end, keeping every line; `seen` is set on a wanted line."""

    def __init__(self, url: str, wanted: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.wanted = wanted
        self.lines: list[str] = []
        self.seen = threading.Event()
        self.ended = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=httpx.Timeout(10, read=120)) as response:
                for line in response.iter_lines():
                    self.lines.append(line)
                    if line == self.wanted:
                        self.seen.set()
        except BaseException as exc:
            self.error = exc
        finally:
            self.ended.set()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def processes() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for process in started:
        stop_process(process)


async def test_stopping_the_api_ends_streams_at_once_and_hands_the_job_back(
    database_url: str, tmp_path: Path, port: int, processes: list[Any]
) -> None:
    env = cli_env(
        tmp_path / "data",
        FABRIC_DATABASE_URL=database_url,
        FABRIC_PORT=str(port),
        FABRIC_SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
        FABRIC_WORKER_POLL_INTERVAL="0.05",
        FABRIC_SSE_POLL_SECONDS="0.05",
    )
    log = tmp_path / "serve.log"
    server = start_cli("serve", env=env, cwd=tmp_path, log=log)
    processes.append(server)
    base = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{base}/healthz", server, log)

    async with httpx.AsyncClient(base_url=base, timeout=30) as api:
        body = {"modality": "text", "input": {"prompt": "slow"}, "params": {"delay_ms": 60_000}}
        job = (await api.post("/v1/jobs", json=body)).json()["data"]
        await wait_for_job(api, job["id"], "started")
    stream = StreamReader(f"{base}/v1/jobs/{job['id']}/events", "event: job.started")
    stream.start()
    assert await asyncio.to_thread(stream.seen.wait, 30), stream.lines

    server.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(stream.ended.wait, 60)
    # The stream ended before the worker's grace period did: the job was still running.
    status_when_stream_ended = (await _load(database_url, job["id"]))[0].status
    assert await asyncio.to_thread(server.wait, 60) == -signal.SIGTERM

    output = log.read_text(errors="replace")
    assert stream.error is None, stream.error
    assert [line for line in stream.lines if line][-3:] == [
        "event: reconnect",
        "retry: 0",
        'data: {"retry_ms":0}',
    ], output
    assert status_when_stream_ended == "started"
    assert "Traceback" not in output
    assert "timeout graceful shutdown exceeded" not in output
    assert "handed job.execute" in output

    stored, kinds, item = await _load(database_url, job["id"])
    assert (stored.status, stored.attempts, stored.started_at) == ("pending", 0, None)
    assert kinds == ["job.created", "job.started", "job.requeued"]
    assert (item.status, item.attempts, item.lease_owner) == ("queued", 0, None)


async def _load(database_url: str, job_id: str) -> tuple[Job, list[str], WorkItem]:
    db = Database(to_async_url(database_url))
    try:
        async with db.read() as session:
            job = await session.get(Job, job_id)
            events = await session.scalars(
                select(Event.kind).where(Event.job_id == job_id).order_by(Event.seq)
            )
            item = await session.scalar(select(WorkItem).where(WorkItem.ref_id == job_id))
            assert job is not None
            assert item is not None
            return job, list(events), item
    finally:
        await db.dispose()


def test_dev_mode_on_a_network_address_serves_after_a_loud_warning(
    tmp_path: Path, port: int, processes: list[Any]
) -> None:
    log = tmp_path / "serve.log"
    server = start_cli(
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--dev-on-network",
        "--no-workers",
        env=cli_env(tmp_path / "data"),
        cwd=tmp_path,
        log=log,
    )
    processes.append(server)
    wait_until_answering(f"http://127.0.0.1:{port}/healthz", server, log)

    anonymous = httpx.get(f"http://127.0.0.1:{port}/v1/jobs", timeout=10)
    assert anonymous.status_code == 200  # the dev owner, as promised
    server.send_signal(signal.SIGINT)
    assert server.wait(timeout=60) == 0
    output = log.read_text(errors="replace")
    assert "WARNING" in output
    assert "DEV MODE ON A NETWORK ADDRESS (0.0.0.0" in output
    assert "platform administrator" in output
    assert "Traceback" not in output


def test_a_worker_answers_liveness_and_readiness_probes(
    database_url: str, tmp_path: Path, port: int, processes: list[Any]
) -> None:
    env = cli_env(tmp_path / "data", FABRIC_DATABASE_URL=database_url)
    log = tmp_path / "worker.log"
    worker = start_cli("worker", "--health-port", str(port), env=env, cwd=tmp_path, log=log)
    processes.append(worker)
    base = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{base}/healthz", worker, log)

    live = httpx.get(f"{base}/healthz", timeout=10).json()
    ready = httpx.get(f"{base}/readyz", timeout=10)
    assert live["data"]["status"] == "ok"
    assert ready.status_code == 200
    assert ready.json()["data"] == {"status": "ready", "database": database_url.split(":")[0]}
    assert ready.json()["meta"]["request_id"] == ready.headers["x-request-id"]
    # Only the probes: the API is not served by a worker.
    missing = httpx.get(f"{base}/v1/jobs", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    assert "Traceback" not in log.read_text(errors="replace")
