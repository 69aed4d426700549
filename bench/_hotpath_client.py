"""The load for `hotpath.py`, in its own process: `python _hotpath_client.py BASE PHASE JOBS
RUNS WAIT`. Prints one JSON line: units done, throughput, p50/p99 latency."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx

TERMINAL_JOB = ("completed", "failed")
TERMINAL_RUN = ("completed", "failed", "cancelled")
LINEAR10 = [
    {"key": f"n{i}", "operation": "workflow.noop", **({"depends_on": [f"n{i - 1}"]} if i else {})}
    for i in range(10)
]


async def wait_job(client: httpx.AsyncClient, job_id: str, how: str) -> None:
    if how == "stream":
        async with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
            async for line in stream.aiter_lines():
                if line in ("event: job.completed", "event: job.failed"):
                    return
    while True:
        params = {"wait": "30"} if how == "long" else None
        job = (await client.get(f"/v1/jobs/{job_id}", params=params)).json()["data"]
        if job["status"] in TERMINAL_JOB:
            return
        if how == "poll":
            await asyncio.sleep(0.002)


async def one_job(client: httpx.AsyncClient, how: str) -> float:
    started = time.perf_counter()
    response = await client.post("/v1/jobs", json={"modality": "text", "input": {"prompt": "hi"}})
    response.raise_for_status()
    await wait_job(client, response.json()["data"]["id"], how)
    return time.perf_counter() - started


async def one_run(client: httpx.AsyncClient, wf_id: str, how: str) -> float:
    started = time.perf_counter()
    created = await client.post("/v1/workflow-runs", json={"workflow_definition_id": wf_id})
    created.raise_for_status()
    run_id = created.json()["data"]["id"]
    (await client.post(f"/v1/workflow-runs/{run_id}/start", json={})).raise_for_status()
    if how == "stream":
        async with client.stream("GET", f"/v1/workflow-runs/{run_id}/events") as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event: workflow.run.") and line.rsplit(".", 1)[1] in (
                    TERMINAL_RUN
                ):
                    break
    else:
        while True:
            params = {"wait": "30"} if how == "long" else None
            run = (await client.get(f"/v1/workflow-runs/{run_id}", params=params)).json()["data"]
            if run["status"] in TERMINAL_RUN:
                break
            if how == "poll":
                await asyncio.sleep(0.002)
    return time.perf_counter() - started


async def concurrently(count: int, workers: int, job: Any) -> tuple[list[float], float]:
    remaining = count
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            latencies.append(await job())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return latencies, time.perf_counter() - started


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


async def main(base: str, phase: str, jobs: int, runs: int, how: str) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        if phase == "warmup":
            lat, took = await concurrently(20, 1, lambda: one_job(client, how))
            units, unit = 20, "job"
        elif phase == "jobs-sequential":
            lat, took = await concurrently(jobs, 1, lambda: one_job(client, how))
            units, unit = jobs, "job"
        elif phase == "jobs-concurrent":
            lat, took = await concurrently(jobs * 2, 16, lambda: one_job(client, how))
            units, unit = jobs * 2, "job"
        else:
            body = {"name": f"hotpath-{time.time_ns()}", "nodes": LINEAR10}
            created = await client.post("/v1/workflow-definitions", json=body)
            created.raise_for_status()
            wf_id = created.json()["data"]["id"]
            lat, took = await concurrently(runs, 16, lambda: one_run(client, wf_id, how))
            units, unit = runs * len(LINEAR10), "node"
    return {
        "units": units,
        "unit": unit,
        "rate": units / took,
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
    }


if __name__ == "__main__":
    base, phase, jobs, runs, how = sys.argv[1:6]
    print(json.dumps(asyncio.run(main(base, phase, int(jobs), int(runs), how))))
