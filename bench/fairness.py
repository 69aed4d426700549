"""Per-organization fairness: does one organization's flood starve another's jobs?

Organization A submits a backlog of jobs (10,000 by default, in batches of 1,000) as fast
as the server takes them; meanwhile organization B submits one job at a time and waits for
each (`GET /v1/jobs/{id}?wait=`). B's submit→completed latency under the flood is compared
with the same measured on the idle server in the same run.

Target (issue: operating at scale): B's p50 under the flood within 2x of idle.
Usage: `python bench/fairness.py [--flood 10000] [--samples 40]`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx
from _harness import dialects, median, percentile, server

from fabric_server.settings import DEFAULT_ORGANIZATION_ID

JOB = {"modality": "text", "input": {"prompt": "fair?"}}


async def one_job(client: httpx.AsyncClient, org_id: str) -> float:
    started = time.perf_counter()
    created = await client.post("/v1/jobs", json={**JOB, "organization_id": org_id})
    created.raise_for_status()
    job_id = created.json()["data"]["id"]
    while True:
        got = await client.get(f"/v1/jobs/{job_id}", params={"wait": 30})
        got.raise_for_status()
        if got.json()["data"]["status"] in ("completed", "failed"):
            return time.perf_counter() - started


async def latencies(client: httpx.AsyncClient, org_id: str, samples: int) -> list[float]:
    return [await one_job(client, org_id) for _ in range(samples)]


async def flood(client: httpx.AsyncClient, org_id: str, jobs: int) -> None:
    for offset in range(0, jobs, 1000):
        batch = [dict(JOB) for _ in range(min(1000, jobs - offset))]
        response = await client.post(
            "/v1/jobs/batch", json={"organization_id": org_id, "jobs": batch}
        )
        response.raise_for_status()


async def backlog(client: httpx.AsyncClient, org_id: str) -> int:
    """A lower bound of A's unfinished jobs (pending or started): their first pages."""
    count = 0
    for status in ("pending", "started"):
        page = await client.get(
            "/v1/jobs", params={"organization_id": org_id, "status": status, "limit": 100}
        )
        count += len(page.json()["data"]["items"])
    return count


async def measure(base: str, flood_size: int, samples: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        org_a = DEFAULT_ORGANIZATION_ID  # the dev owner's organization
        created = await client.post(
            "/v1/organizations", json={"slug": "bench-b", "name": "Bench B"}
        )
        created.raise_for_status()
        org_b = created.json()["data"]["id"]
        await latencies(client, org_b, 5)  # warm up
        idle = await latencies(client, org_b, samples)

        flooding = asyncio.create_task(flood(client, org_a, flood_size))
        # Let the backlog build before measuring B.
        deadline = time.monotonic() + 60
        while True:
            if await backlog(client, org_a) >= 100 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        busy = await latencies(client, org_b, samples)
        still_waiting = await backlog(client, org_a)
        await flooding
    return {"idle": idle, "busy": busy, "a_backlog_after": still_waiting}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flood", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    print(f"fairness: A floods {args.flood:,} jobs; B submits {args.samples} one at a time")
    for dialect in dialects():
        env = {"FABRIC_ORG_MAX_ACTIVE_JOBS": str(args.flood * 2)}
        with server(dialect, **env) as base:
            result = asyncio.run(measure(base, args.flood, args.samples))
        idle, busy = result["idle"], result["busy"]
        ratio = median(busy) / median(idle)
        print(
            f"{dialect:>10}: B p50 idle {median(idle) * 1000:6.1f} ms, "
            f"under A's flood {median(busy) * 1000:6.1f} ms "
            f"(p99 {percentile(busy, 99) * 1000:.1f}) "
            f"→ {ratio:.2f}x idle (target ≤ 2x); A still had ≥{result['a_backlog_after']} "
            "unfinished jobs when B's last finished"
        )


if __name__ == "__main__":
    main()
