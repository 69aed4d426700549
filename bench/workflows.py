"""Workflow runs: throughput for a 1-node and a 10-node DAG, and dispatch latency.

* runs/s: 16 concurrent submitters, each creating + starting a run and following its event
  stream until `workflow.run.completed`.
* dispatch latency: from `workflow.run.queued` (written by the start call) to the first
  `workflow.node.started`, from the server's own event timestamps, one run at a time.
Baseline measured in the same run: the plain request round trip (`GET /v1/health`).
Usage: `python bench/workflows.py [--runs 200]`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
from typing import Any

import httpx
from _harness import dialects, median, percentile, server

ONE = [{"key": "only", "operation": "workflow.noop"}]
# A diamond-ish 10-node DAG: a root, 8 parallel nodes, a join.
TEN: list[dict[str, Any]] = [
    {"key": "root", "operation": "workflow.noop"},
    *(
        {"key": f"branch{i}", "operation": "workflow.noop", "depends_on": ["root"]}
        for i in range(8)
    ),
    {
        "key": "join",
        "operation": "workflow.noop",
        "depends_on": [f"branch{i}" for i in range(8)],
    },
]


async def define(client: httpx.AsyncClient, name: str, nodes: list[dict[str, Any]]) -> str:
    response = await client.post("/v1/workflow-definitions", json={"name": name, "nodes": nodes})
    response.raise_for_status()
    wf_id: str = response.json()["data"]["id"]
    return wf_id


async def run_once(client: httpx.AsyncClient, wf_id: str) -> str:
    created = await client.post("/v1/workflow-runs", json={"workflow_definition_id": wf_id})
    run_id: str = created.json()["data"]["id"]
    await client.post(f"/v1/workflow-runs/{run_id}/start", json={})
    async with client.stream("GET", f"/v1/workflow-runs/{run_id}/events") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event: workflow.run.") and line.split(".")[-1] in (
                "completed",
                "failed",
                "cancelled",
            ):
                break
    return run_id


async def throughput(base: str, wf_id: str, runs: int, submitters: int) -> float:
    limits = httpx.Limits(max_connections=submitters * 2)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        remaining = runs

        async def submitter() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await run_once(client, wf_id)

        started = time.perf_counter()
        await asyncio.gather(*(submitter() for _ in range(submitters)))
        return runs / (time.perf_counter() - started)


async def dispatch_latencies(base: str, wf_id: str, samples: int) -> tuple[list[float], float]:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        health = []
        for _ in range(samples):
            started = time.perf_counter()
            await client.get("/v1/health")
            health.append(time.perf_counter() - started)
        latencies = []
        for _ in range(samples):
            run_id = await run_once(client, wf_id)
            log = (await client.get(f"/v1/workflow-runs/{run_id}/log")).json()["data"]
            stamps = {}
            for event in log["events"]:
                stamps.setdefault(event["kind"], dt.datetime.fromisoformat(event["created_at"]))
            delta = stamps["workflow.node.started"] - stamps["workflow.run.queued"]
            latencies.append(delta.total_seconds())
    return latencies, median(health)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--submitters", type=int, default=16)
    parser.add_argument("--latency-samples", type=int, default=50)
    args = parser.parse_args()
    print(f"bench/workflows: {args.runs} runs per DAG, {args.submitters} concurrent submitters")
    for dialect in dialects():
        with server(dialect) as base:

            async def scenario() -> tuple[float, float, list[float], float]:
                async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                    one = await define(client, "bench-1", ONE)
                    ten = await define(client, "bench-10", TEN)
                rate_one = await throughput(base, one, args.runs, args.submitters)
                rate_ten = await throughput(base, ten, args.runs, args.submitters)
                latencies, health = await dispatch_latencies(base, one, args.latency_samples)
                return rate_one, rate_ten, latencies, health

            rate_one, rate_ten, latencies, health = asyncio.run(scenario())
        p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
        print(
            f"  {dialect:<10} 1-node {rate_one:6.1f} runs/s | 10-node {rate_ten:6.1f} runs/s | "
            f"dispatch p50 {p50:6.1f} ms p99 {p99:6.1f} ms | baseline GET /v1/health "
            f"{health * 1000:5.2f} ms | dispatch p50 ratio {p50 / (health * 1000):5.1f}x"
        )


if __name__ == "__main__":
    main()
