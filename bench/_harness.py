"""Shared benchmark plumbing: a real server subprocess on a fresh database, and statistics."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from fabric_server.testing import TestDatabases, free_port

PG_URL = os.environ.get("FABRIC_BENCH_DATABASE_URL") or os.environ.get("FABRIC_TEST_DATABASE_URL")


def dialects() -> list[str]:
    return ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


@contextlib.contextmanager
def server(dialect: str, **env: str) -> Iterator[str]:
    """Start `fabric-server serve` on a fresh database; yield its base URL."""
    with tempfile.TemporaryDirectory(prefix="fabric-bench-") as tmp:
        dbs = TestDatabases(Path(tmp), PG_URL)
        url = dbs.create(dialect)
        port = free_port()
        environment = {
            **os.environ,
            "FABRIC_DATABASE_URL": url,
            "FABRIC_DATA_DIR": tmp,
            "FABRIC_PORT": str(port),
            "FABRIC_LOG_LEVEL": "warning",
            "FABRIC_WORKER_CONCURRENCY": "8",
            **env,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "fabric_server", "serve"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)
            dbs.drop(url)
            dbs.close()


def _wait_healthy(base: str) -> None:
    # Generous: on a shared 2-core machine the server's imports alone can take over 10 s.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError("server did not become healthy")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)
