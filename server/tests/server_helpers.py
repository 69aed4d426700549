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

from fabric_server.testing import free_port

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


class ServerProcess:
    """`fabric-server serve` in a process of its own (for `kill -9` and for caches that are
    really another process's), restartable on the same database."""

    def __init__(self, database_url: str, directory: Path, **settings: str) -> None:
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FABRIC_")}
        env.update(
            FABRIC_DATABASE_URL=database_url,
            FABRIC_DATA_DIR=str(directory / "server-data"),
            FABRIC_LOG_LEVEL="info",
            FABRIC_PORT=str(self.port),
        )
        env.update(settings)
        self.env = env
        script = shutil.which("fabric-server", path=str(Path(sys.executable).parent))
        assert script is not None, "fabric-server is not installed in this environment"
        self.command = [script, "serve"]
        self._starts = 0

    def start(self) -> ServerProcess:
        self._starts += 1
        log = (self.directory / f"server-{self.port}-{self._starts}.log").open("wb")
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        # Generous: on a loaded 2-core machine a spawned API process's imports alone can
        # take tens of seconds.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited at start:\n{self.logs()}")
            try:
                if httpx.get(f"{self.base_url}/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the server did not start:\n{self.logs()}")

    def kill(self) -> None:
        """`kill -9`: no shutdown of any kind."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')}"
            for path in sorted(self.directory.glob(f"server-{self.port}-*.log"))
        )

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
