"""Jobs end to end: throughput with 16 concurrent submitters, and submit→completed latency.

Baseline measured in the same run: the server's plain request round trip (`GET /v1/health`),
so the printed ratios say how much a whole job costs relative to the cheapest request.
Usage: `python bench/jobs.py [--jobs 400] [--latency-samples 50]` (PostgreSQL too when
FABRIC_BENCH_DATABASE_URL or FABRIC_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
from _harness import dialects, median, percentile, server


async def submit_and_wait(client: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    response = await client.post("/v1/jobs", json={"modality": "text", "input": {"prompt": "hi"}})
    job_id = response.json()["data"]["id"]
    async with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
        async for line in stream.aiter_lines():
            if line in ("event: job.completed", "event: job.failed"):
                break
    return time.perf_counter() - started


async def throughput(base: str, jobs: int, submitters: int) -> float:
    limits = httpx.Limits(max_connections=submitters * 2)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        remaining = jobs

        async def submitter() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await submit_and_wait(client)

        started = time.perf_counter()
        await asyncio.gather(*(submitter() for _ in range(submitters)))
        return jobs / (time.perf_counter() - started)


async def latencies(base: str, samples: int) -> tuple[list[float], list[float]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for _ in range(5):  # warm-up
            await submit_and_wait(client)
        health = []
        for _ in range(samples):
            started = time.perf_counter()
            await client.get("/v1/health")
            health.append(time.perf_counter() - started)
        job = [await submit_and_wait(client) for _ in range(samples)]
    return health, job


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--submitters", type=int, default=16)
    parser.add_argument("--latency-samples", type=int, default=50)
    args = parser.parse_args()
    print(f"bench/jobs: {args.jobs} jobs, {args.submitters} concurrent submitters")
    for dialect in dialects():
        with server(dialect) as base:
            rate = asyncio.run(throughput(base, args.jobs, args.submitters))
            health, job = asyncio.run(latencies(base, args.latency_samples))
        p50, p99 = percentile(job, 50) * 1000, percentile(job, 99) * 1000
        base_ms = median(health) * 1000
        print(
            f"  {dialect:<10} throughput {rate:7.1f} jobs/s | submit→completed "
            f"p50 {p50:6.1f} ms p99 {p99:6.1f} ms | baseline GET /v1/health {base_ms:5.2f} ms "
            f"| p50 ratio {p50 / base_ms:5.1f}x"
        )


if __name__ == "__main__":
    main()
