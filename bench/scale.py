"""Scale-out on PostgreSQL: what more worker processes and more API processes add.

Every configuration gets a fresh database, one `fabric-server serve --no-workers` (with
`--workers 2` for two API processes on one port) and M `fabric-server worker` processes,
each started and ready (`/readyz`) before anything is measured.

* jobs/s (workers): `--jobs` echo jobs submitted in batches (`POST /v1/jobs/batch`), from
  the first submission until the database counts them all completed; 1, 2 and 4 workers.
* node transitions/s (workers): `--runs` runs of a 10-node workflow (a root, 8 parallel
  nodes, a join; `workflow.noop`), 16 in flight, each followed on its event stream to the
  end (`bench/workflows.py`'s loop); nodes completed per second; 1, 2 and 4 workers.
* jobs/s (API processes): 16 concurrent submitters, each `POST /v1/jobs` then
  `GET /v1/jobs/{id}?wait=30`, end to end; 1 and 2 API processes, 2 workers.

Each figure is printed with its ratio to the 1-process figure of the same run.
Usage: `python bench/scale.py [--jobs 2000] [--runs 60] [--e2e-jobs 600]
[--workers 1,2,4]` with FABRIC_BENCH_DATABASE_URL or FABRIC_TEST_DATABASE_URL set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
from _harness import PG_URL, server
from _proc import fabric_server
from workflows import TEN, define

from fabric_server.testing import free_port

JOB = {"modality": "text", "input": {"prompt": "hi"}}
BATCH = 500
SUBMITTERS = 16
# As `_harness.server` gives the API process.
CONCURRENCY = "8"


@contextlib.contextmanager
def workers(database_url: str, count: int) -> Iterator[None]:
    """`count` `fabric-server worker` processes on the database, each ready."""
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="fabric-bench-workers-") as tmp:
        try:
            probes = []
            for index in range(count):
                port = free_port()
                env = {
                    **os.environ,
                    "FABRIC_DATABASE_URL": database_url,
                    "FABRIC_DATA_DIR": str(Path(tmp) / f"worker-{index}"),
                    "FABRIC_LOG_LEVEL": "warning",
                    "FABRIC_WORKER_CONCURRENCY": CONCURRENCY,
                }
                command = [sys.executable, "-m", "fabric_server", "worker", "--health-port"]
                processes.append(
                    subprocess.Popen(
                        [*command, str(port)],
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                probes.append(f"http://127.0.0.1:{port}/readyz")
            for probe in probes:
                _wait_ready(probe)
            yield
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)


def _wait_ready(url: str) -> None:
    # Generous: several processes import the server at once on a shared machine.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"worker not ready: {url}")


@contextlib.contextmanager
def deployment(api_processes: int, worker_processes: int) -> Iterator[tuple[str, str]]:
    """An API (no workers of its own) and worker processes on a fresh PostgreSQL database;
    yields the API's base URL and the database URL."""
    env = {"FABRIC_RUN_WORKERS": "false", "FABRIC_API_PROCESSES": str(api_processes)}
    with server("postgresql", **env) as base:
        _, database_url = fabric_server()
        with workers(database_url, worker_processes):
            yield base, database_url


async def batch_jobs_per_second(base: str, database_url: str, jobs: int) -> float:
    """Submit `jobs` jobs in batches; jobs completed per second until the last one."""
    conn = await asyncpg.connect(database_url)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            started = time.perf_counter()
            for offset in range(0, jobs, BATCH):
                batch = [dict(JOB) for _ in range(min(BATCH, jobs - offset))]
                response = await client.post("/v1/jobs/batch", json={"jobs": batch})
                response.raise_for_status()
        done = "SELECT count(*) FROM jobs WHERE status = 'completed'"
        while True:
            if await conn.fetchval(done) >= jobs:
                return jobs / (time.perf_counter() - started)
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def end_to_end_jobs_per_second(base: str, jobs: int) -> float:
    """`SUBMITTERS` concurrent clients, each submitting a job and waiting for it."""
    limits = httpx.Limits(max_connections=SUBMITTERS * 2)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        remaining = jobs

        async def submitter() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                created = await client.post("/v1/jobs", json=JOB)
                created.raise_for_status()
                job_id = created.json()["data"]["id"]
                while True:
                    got = await client.get(f"/v1/jobs/{job_id}", params={"wait": 30})
                    if got.json()["data"]["status"] in ("completed", "failed"):
                        break

        started = time.perf_counter()
        await asyncio.gather(*(submitter() for _ in range(SUBMITTERS)))
        return jobs / (time.perf_counter() - started)


async def node_transitions_per_second(base: str, runs: int) -> tuple[float, int]:
    """`SUBMITTERS` concurrent clients, each creating and starting a run of the 10-node
    workflow and following its event stream to the end. Nodes completed per second, and
    how many runs failed (a create or start answered with an error, or the run failed)."""
    limits = httpx.Limits(max_connections=SUBMITTERS * 2)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        wf_id = await define(client, "bench-scale-10", TEN)
        remaining, completed, failed = runs, 0, 0

        async def one() -> bool:
            created = await client.post("/v1/workflow-runs", json={"workflow_definition_id": wf_id})
            if created.status_code != 201:
                return False
            run_id = created.json()["data"]["id"]
            started = await client.post(f"/v1/workflow-runs/{run_id}/start", json={})
            if started.status_code != 202:
                return False
            path = f"/v1/workflow-runs/{run_id}/events"
            async with client.stream("GET", path) as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("event: workflow.run."):
                        end = line.rsplit(".", 1)[-1]
                        if end in ("completed", "failed", "cancelled"):
                            return end == "completed"
            return False

        async def submitter() -> None:
            nonlocal remaining, completed, failed
            while remaining > 0:
                remaining -= 1
                if await one():
                    completed += 1
                else:
                    failed += 1

        began = time.perf_counter()
        await asyncio.gather(*(submitter() for _ in range(SUBMITTERS)))
        return completed * len(TEN) / (time.perf_counter() - began), failed


def row(label: str, rates: dict[int, float], unit: str) -> None:
    baseline = rates[min(rates)]
    cells = " | ".join(
        f"{count} → {rate:7.1f} {unit} ({rate / baseline:4.2f}x)" for count, rate in rates.items()
    )
    print(f"  {label:<34} {cells}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--e2e-jobs", type=int, default=600)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    if not PG_URL:
        sys.exit("bench/scale.py needs PostgreSQL: set FABRIC_BENCH_DATABASE_URL")
    counts = [int(n) for n in args.workers.split(",")]
    print(
        f"bench/scale: {os.cpu_count()} cores; {args.jobs} batched jobs, {args.runs} runs of "
        f"a 10-node workflow, {args.e2e_jobs} end-to-end jobs per configuration",
        flush=True,
    )
    jobs: dict[int, float] = {}
    nodes: dict[int, float] = {}
    failed: dict[int, int] = {}
    for count in counts:
        with deployment(1, count) as (base, database_url):
            jobs[count] = asyncio.run(batch_jobs_per_second(base, database_url, args.jobs))
            nodes[count], failed[count] = asyncio.run(node_transitions_per_second(base, args.runs))
    row("worker processes: batched jobs", jobs, "jobs/s")
    row("worker processes: node transitions", nodes, "nodes/s")
    print(f"  {'runs not completed (of ' + str(args.runs) + ')':<34} {failed}", flush=True)
    e2e: dict[int, float] = {}
    for apis in (1, 2):
        with deployment(apis, 2) as (base, _):
            e2e[apis] = asyncio.run(end_to_end_jobs_per_second(base, args.e2e_jobs))
    row("API processes (2 workers): jobs", e2e, "jobs/s")


if __name__ == "__main__":
    main()
