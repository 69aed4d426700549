"""Small helpers shared by the server tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 15.0
) -> T:
    """Poll `probe` until `check` accepts its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.02)


async def wait_for_job(client: httpx.AsyncClient, job_id: str, *statuses: str) -> dict[str, Any]:
    wanted = statuses or ("completed", "failed")

    async def probe() -> dict[str, Any]:
        response = await client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    return await eventually(probe, lambda job: job["status"] in wanted)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The wire error envelope, with the given status and code."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["data"] is None
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["meta"] == {"status": status, "request_id": response.headers["x-request-id"]}
    return body


class WorkerProcesses:
    """Starts `fabric-server worker` processes and makes sure none outlives the test."""

    def __init__(self, database_url: str, directory: Path, **settings: str) -> None:
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("FABRIC_")}
        env.update(
            FABRIC_DATABASE_URL=database_url,
            FABRIC_DATA_DIR=str(directory / "worker-data"),
            FABRIC_LOG_LEVEL="info",
        )
        env.update(settings)
        self.env = env
        # The installed console script, next to the interpreter running the tests.
        script = shutil.which("fabric-server", path=str(Path(sys.executable).parent))
        assert script is not None, "fabric-server is not installed in this environment"
        self.command = [script, "worker"]

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.directory / f"worker-{len(self.processes) + 1}.log").open("wb")
        self._logs.append(log)
        # Run in the test's directory: a `.env` file where pytest runs must not leak in.
        process = subprocess.Popen(
            self.command, env=self.env, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')}"
            for path in sorted(self.directory.glob("worker-*.log"))
        )

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()  # a graceful stop first, so leases are handed back
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
            process.wait(timeout=10)
        for log in self._logs:
            log.close()
