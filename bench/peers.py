"""Fabric against Celery on the same workload, measured in the same run.

The workload: a client submits a no-op job, a worker runs it, the result is stored, and the
client sees it completed. Each system gets `--jobs` jobs from `--submitters` concurrent threads
(throughput, and latency under load), then `--samples` jobs one at a time (latency).

Fabric (`fabric-server serve`, API and workers in one process, a fresh database per variant,
SQLite and PostgreSQL when FABRIC_BENCH_DATABASE_URL or FABRIC_TEST_DATABASE_URL is set),
text jobs answered by the echo provider:

* `sdk`: `FabricClient.create_job(..., wait=30)`, one sync client per submitter thread;
* `httpx`: raw `httpx.Client`, `POST /v1/jobs` then `GET /v1/jobs/{id}?wait=30`;
* `sdk batch`: `create_jobs` with 50 jobs, then `wait_for_job` on each in turn.

Celery 5 + Redis (a `redis-server` started here on a free loopback port, broker and result
backend; a worker with the same concurrency as Fabric's workers), in a venv of its own
(`~/.cache/fabric-bench/celery-venv`, created on first use):

* `delay().get()`: one task per call, one thread per submitter, as the Fabric `sdk` rows;
* `group of 50`: `group(...).apply_async().get()`, the peer of the batch rows.

Server CPU per job is read from /proc: the Fabric server process (plus, on PostgreSQL, the
backends serving its database), or the Celery worker's processes plus redis-server.
Usage: `python bench/peers.py [--jobs 2000] [--submitters 16] [--samples 200]
[--only fabric|celery] [--concurrency 8] [--celery-pool prefork|threads]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from _harness import dialects, server
from _load import Unit, measure
from _proc import cpu_seconds, fabric_server, tree

from fabric_platform import FabricClient, FabricWaitTimeout
from fabric_server.testing import free_port

HERE = Path(__file__).resolve().parent
CELERY_VENV = Path.home() / ".cache" / "fabric-bench" / "celery-venv"
CELERY_REQUIREMENTS = ["celery>=5,<6", "redis", "packaging"]
BATCH = 50
WAIT = 30.0
JOB = {"modality": "text", "input": {"prompt": "hi"}}
TERMINAL = ("completed", "failed")

Row = dict[str, Any]


# Fabric: one unit per submitter thread, each with its own client.


def sdk_unit(client: FabricClient) -> Unit:
    def unit() -> list[float | None]:
        started = time.perf_counter()
        job = client.create_job(modality="text", input={"prompt": "hi"}, wait=WAIT)
        return [time.perf_counter() - started if job["status"] == "completed" else None]

    return unit


def httpx_unit(client: httpx.Client) -> Unit:
    def unit() -> list[float | None]:
        started = time.perf_counter()
        response = client.post("/v1/jobs", json=JOB)
        response.raise_for_status()
        job = response.json()["data"]
        deadline = started + WAIT
        while job["status"] not in TERMINAL and time.perf_counter() < deadline:
            read = client.get(f"/v1/jobs/{job['id']}", params={"wait": WAIT})
            read.raise_for_status()
            job = read.json()["data"]
        return [time.perf_counter() - started if job["status"] == "completed" else None]

    return unit


def batch_unit(client: FabricClient) -> Unit:
    def unit() -> list[float | None]:
        started = time.perf_counter()
        jobs = client.create_jobs([JOB] * BATCH)
        seen: list[float | None] = []
        for job in jobs:
            try:
                done = client.wait_for_job(job["id"], timeout=WAIT)
            except FabricWaitTimeout:
                seen.append(None)
                continue
            ok = done["status"] == "completed"
            seen.append(time.perf_counter() - started if ok else None)
        return seen

    return unit


FABRIC_VARIANTS: dict[str, tuple[Callable[[str], Any], Callable[[Any], Unit], int]] = {
    "sdk create_job(wait=)": (lambda base: FabricClient(base_url=base), sdk_unit, 1),
    "httpx POST + GET ?wait=": (
        lambda base: httpx.Client(base_url=base, timeout=WAIT + 30),
        httpx_unit,
        1,
    ),
    "sdk create_jobs x50": (lambda base: FabricClient(base_url=base), batch_unit, BATCH),
}


class ServerCpu:
    """CPU seconds spent by the server's processes (and its PostgreSQL backends) since start."""

    def __init__(self, roots: list[int], database_url: str | None) -> None:
        self.roots = roots
        self.database_url = database_url
        self.start = self._now()

    def _backends(self) -> dict[int, float]:
        if not self.database_url or not self.database_url.startswith("postgresql"):
            return {}
        return {pid: cpu_seconds([pid]) for pid in asyncio.run(_backend_pids(self.database_url))}

    def _now(self) -> tuple[float, dict[int, float]]:
        return cpu_seconds(tree(self.roots)), self._backends()

    def spent(self) -> float:
        own, backends = self._now()
        before_own, before = self.start
        return own - before_own + sum(cpu - before.get(pid, 0.0) for pid, cpu in backends.items())


async def _backend_pids(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return [row["pid"] for row in rows]
    finally:
        await conn.close()


def run_fabric(dialect: str, name: str, args: argparse.Namespace) -> Row:
    make_client, make_unit, size = FABRIC_VARIANTS[name]
    print(f"  … fabric {dialect}: {name}", file=sys.stderr, flush=True)
    with server(dialect, FABRIC_WORKER_CONCURRENCY=str(args.concurrency)) as base:
        pid, database_url = fabric_server()
        clients = [make_client(base) for _ in range(args.submitters)]
        try:
            cpu = ServerCpu([pid], database_url)
            result = measure([make_unit(c) for c in clients], args.jobs, args.samples, size)
            result["cpu_seconds"] = cpu.spent()
        finally:
            for client in clients:
                client.close()
    return {"system": f"fabric {dialect}", "variant": name, "peer": size, **result}


# Celery + Redis, driven through `_celery_peer.py` with the venv's interpreter.


def celery_python() -> Path:
    """The interpreter of a venv holding Celery, created (once) outside the project's venv."""
    python = CELERY_VENV / "bin" / "python"
    probe = [str(python), "-c", "import celery, redis, packaging"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"  (installing Celery into {CELERY_VENV})", flush=True)
    base = shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", str(CELERY_VENV)], check=True)
    install = [str(python), "-m", "pip", "install", "-q", *CELERY_REQUIREMENTS]
    subprocess.run(install, check=True)
    return python


@contextlib.contextmanager
def started(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=HERE)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for_redis(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def run_celery(args: argparse.Namespace) -> list[Row]:
    python = str(celery_python())
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    redis += ["--appendonly", "no"]
    peer = str(HERE / "_celery_peer.py")
    worker = [python, peer, "worker", url, str(args.concurrency), args.celery_pool]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fabric-bench-celery-") as tmp:
        logs = Path(tmp)
        with started(redis, logs / "redis.log") as rds, started(worker, logs / "worker.log") as wrk:
            wait_for_redis(port)
            for mode, name, size in (("single", "delay().get()", 1), ("group", "group x50", BATCH)):
                print(f"  … celery: {name}", file=sys.stderr, flush=True)
                cpu = ServerCpu([rds.pid, wrk.pid], None)
                counts = [str(args.jobs), str(args.submitters), str(args.samples)]
                client = [python, peer, "client", url, mode, *counts]
                done = subprocess.run(client, capture_output=True, text=True, cwd=HERE)
                if done.returncode != 0:
                    worker_log = (logs / "worker.log").read_text()[-2000:]
                    raise RuntimeError(f"Celery client failed:\n{done.stderr}\n{worker_log}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                result["cpu_seconds"] = cpu.spent()
                system = f"celery redis ({args.celery_pool})"
                rows.append({"system": system, "variant": name, "peer": size, **result})
    return rows


# Report.


def print_table(rows: list[Row], baselines: dict[int, Row]) -> None:
    print(
        f"  {'system':<26} {'variant':<24} {'jobs/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'loaded p50':>10} {'loaded p99':>10} {'failed':>6} {'CPU ms/job':>10}"
        f" {'jobs/s ÷ Celery':>15} {'p50 ÷ Celery':>12}"
    )
    for row in rows:
        loaded, alone = row["loaded"], row["alone"]
        jobs = row["warmup"]["jobs"] + loaded["jobs"] + alone["jobs"]
        failed = row["warmup"]["failed"] + loaded["failed"] + alone["failed"]
        base = baselines.get(row["peer"])
        rate_ratio = p50_ratio = "-"
        if base is not None and base is not row:
            rate_ratio = f"{loaded['rate'] / base['loaded']['rate']:.2f}"
            p50_ratio = f"{alone['p50_ms'] / base['alone']['p50_ms']:.2f}"
        print(
            f"  {row['system']:<26} {row['variant']:<24} {loaded['rate']:7.1f}"
            f" {alone['p50_ms']:7.1f} {alone['p99_ms']:7.1f} {loaded['p50_ms']:10.1f}"
            f" {loaded['p99_ms']:10.1f} {failed:6d} {row['cpu_seconds'] * 1000 / jobs:10.2f}"
            f" {rate_ratio:>15} {p50_ratio:>12}"
        )
        for phase in ("warmup", "loaded", "alone"):
            for error in row[phase]["errors"]:
                print(f"      {phase}: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--submitters", type=int, default=16)
    parser.add_argument("--samples", type=int, default=200, help="jobs one at a time")
    parser.add_argument("--only", choices=("fabric", "celery"))
    parser.add_argument("--concurrency", type=int, default=8, help="worker concurrency, both")
    parser.add_argument("--celery-pool", choices=("prefork", "threads"), default="prefork")
    args = parser.parse_args()
    print(
        f"peers: {args.jobs} jobs from {args.submitters} threads, then {args.samples} one at a"
        f" time; worker concurrency {args.concurrency}; {os.cpu_count()} CPUs,"
        f" load average {os.getloadavg()[0]:.1f} at start"
    )
    rows: list[Row] = []
    if args.only != "fabric":
        if shutil.which("redis-server") is None:
            print("  Celery skipped: redis-server is not on PATH (apt-get install redis-server)")
        else:
            rows += run_celery(args)
    if args.only != "celery":
        for dialect in dialects():
            for name in FABRIC_VARIANTS:
                rows.append(run_fabric(dialect, name, args))
    if not rows:
        return
    baselines = {row["peer"]: row for row in rows if row["system"].startswith("celery")}
    print_table(rows, baselines)
    print(
        "  jobs/s: under load; p50/p99: one at a time; loaded p50/p99: under load (ms);"
        f" failed: of all jobs run; load average {os.getloadavg()[0]:.1f} at end"
    )


if __name__ == "__main__":
    main()
