"""The global stream across failures: a client killed mid-stream resumes without gaps or
duplicates, and on PostgreSQL a stream served by one server process carries events written
by another (`fabric-server serve` in a subprocess), as do that process's webhooks."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import eventually
from test_events import collect
from webhook_receiver import Receiver

from fabric_server.testing import LiveServer, fast_settings, free_port

# Processes sharing a database share the master key: B signs with the webhook secret A sealed.
MASTER_KEY = "test master key shared by both server processes"

# A client in its own process, printing each event id as it arrives (then killed).
CLIENT = """
import sys, httpx
with httpx.stream("GET", sys.argv[1] + "/v1/events/stream", timeout=60) as response:
    for line in response.iter_lines():
        if line.startswith("id: "):
            print(line[4:], flush=True)
"""


async def submit_jobs(client: httpx.AsyncClient, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = await client.post(
            "/v1/jobs", json={"modality": "text", "input": {"prompt": "x"}}
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["data"]["id"])
        await asyncio.sleep(0.01)
    return ids


async def subscribers(server: LiveServer, count: int) -> None:
    hub = server.app.state.services.hub
    await eventually(lambda: asyncio.sleep(0, len(hub._subscribers)), lambda n: n >= count)


async def test_a_killed_client_resumes_without_gaps_or_duplicates(
    live_server: LiveServer, tmp_path: Path
) -> None:
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        reference: list[dict[str, Any]] = []
        watcher = asyncio.create_task(collect(client, "/v1/events/stream", reference))
        victim = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            live_server.base_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await subscribers(live_server, 2)
            producer = asyncio.create_task(submit_jobs(client, 30))
            assert victim.stdout is not None
            seen: list[str] = []
            while len(seen) < 10:  # read a few events, then kill it mid-stream
                line = await asyncio.wait_for(victim.stdout.readline(), 30)
                seen.append(line.decode().strip())
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
            last_id = seen[-1]
            job_ids = await producer
            await eventually(
                lambda: asyncio.sleep(0, reference),
                lambda fs: sum(f["kind"] == "job.completed" for f in fs) == len(job_ids),
            )
            final_id = reference[-1]["id"]

            # The client comes back with the last id it saw and reads until the last event.
            resumed: list[dict[str, Any]] = []
            reader = asyncio.create_task(
                collect(client, "/v1/events/stream", resumed, {"Last-Event-ID": last_id})
            )
            await eventually(
                lambda: asyncio.sleep(0, resumed), lambda fs: any(f["id"] == final_id for f in fs)
            )
            reader.cancel()
        finally:
            watcher.cancel()
            if victim.returncode is None:
                victim.kill()
                await victim.wait()

    everything = [f["id"] for f in reference]
    assert len(everything) == len(set(everything)) == 90
    # Before the kill and after the resume, together: exactly the reference, in order.
    assert everything[: len(seen)] == seen
    assert seen + [f["id"] for f in resumed] == everything


@pytest.fixture
def api_only(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    if not database_url.startswith("postgresql"):
        pytest.skip("several server processes share one database on PostgreSQL")
    # No workers, and no polling: this process learns of B's events only through NOTIFY.
    settings = fast_settings(
        database_url,
        tmp_path / "a",
        run_workers=False,
        sse_poll_seconds=3600,
        secrets_master_key=MASTER_KEY,
    )
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
def other_process(database_url: str, tmp_path: Path) -> Iterator[str]:
    """`fabric-server serve` on another port over the same database; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FABRIC_")}
    env.update(
        FABRIC_DATABASE_URL=database_url,
        FABRIC_DATA_DIR=str(tmp_path / "b"),
        FABRIC_SECRETS_MASTER_KEY=MASTER_KEY,
        FABRIC_PORT=str(port),
        FABRIC_LOG_LEVEL="warning",
        FABRIC_WORKER_POLL_INTERVAL="0.05",
        FABRIC_WEBHOOK_ALLOWED_NETWORKS='["127.0.0.0/8"]',
        FABRIC_WEBHOOK_DISPATCH_POLL_SECONDS="3600",
    )
    script = shutil.which("fabric-server", path=str(Path(sys.executable).parent))
    assert script is not None
    log = (tmp_path / "b.log").open("wb")
    process = subprocess.Popen(
        [script, "serve"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield base
    except BaseException:
        print((tmp_path / "b.log").read_text(errors="replace"))
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        assert process.poll() is None, "the second server process exited"
        try:
            if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("the second server process did not become healthy")


async def test_a_stream_carries_events_written_by_another_server_process(
    api_only: LiveServer, other_process: str
) -> None:
    with Receiver() as receiver:
        async with (
            httpx.AsyncClient(base_url=api_only.base_url, timeout=30) as a,
            httpx.AsyncClient(base_url=other_process, timeout=30) as b,
        ):
            created = await a.post(
                "/v1/webhooks",
                json={
                    "organization_id": "00000000-0000-0000-0000-000000000010",
                    "url": receiver.url,
                    "events": ["job.completed"],
                },
            )
            assert created.status_code == 201, created.text
            frames: list[dict[str, Any]] = []
            reader = asyncio.create_task(
                collect(a, "/v1/events/stream?kinds=job.completed", frames)
            )
            await subscribers(api_only, 1)
            # Process B runs the job, writes its events and delivers them to the webhook
            # that was created through A; A's stream hears of them only through NOTIFY.
            response = await b.post("/v1/jobs", json={"modality": "text", "input": {"prompt": "x"}})
            job_id = response.json()["data"]["id"]
            await eventually(
                lambda: asyncio.sleep(0, frames), lambda fs: any(f["job_id"] == job_id for f in fs)
            )
            reader.cancel()
            await eventually(lambda: asyncio.sleep(0, receiver.requests), bool)
    assert [f["kind"] for f in frames] == ["job.completed"]
    (delivery,) = receiver.requests
    assert json.loads(delivery.body)["id"] == frames[0]["id"]
