"""Code workers: a 10-node workflow whose every node is a worker operation, against the same
workflow of built-in `workflow.noop` nodes (the baseline, measured in the same run).

* node transitions/s: 16 runs in flight (each submitter creates, starts and follows a run to
  its end), 2 `fabric-worker` processes serving `bench.noop`;
* worker overhead per node: one 1-node run at a time, the node's `started` → `completed` time
  from the server's own event timestamps, worker node minus built-in node (p50);
* worker tasks/s: tasks completed per second in the throughput phase.
Usage: `python bench/workers.py [--runs 100]` (PostgreSQL too when FABRIC_TEST_DATABASE_URL
is set).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from _harness import dialects, percentile, server
from workflows import define, run_once, throughput

HERE = Path(__file__).resolve().parent


def ten(operation: str) -> list[dict[str, Any]]:
    """A root, 8 parallel nodes, a join."""
    return [
        {"key": "root", "type": operation},
        *({"key": f"b{i}", "type": operation, "depends_on": ["root"]} for i in range(8)),
        {"key": "join", "type": operation, "depends_on": [f"b{i}" for i in range(8)]},
    ]


@contextlib.contextmanager
def workers(base: str, count: int) -> Iterator[None]:
    environment = {**os.environ, "FABRIC_BASE_URL": base, "PYTHONPATH": str(HERE)}
    environment.pop("FABRIC_API_KEY", None)
    script = Path(sys.executable).with_name("fabric-worker")
    processes = [
        subprocess.Popen(
            [str(script), "_bench_worker:worker", "--log-level", "warning"],
            env=environment,
            cwd=HERE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        _wait_online(base, count)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def _wait_online(base: str, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        page = httpx.get(f"{base}/v1/workers", params={"status": "online"}, timeout=5).json()
        if len(page["data"]["items"]) >= count:
            return
        time.sleep(0.1)
    raise RuntimeError("the workers did not come online")


async def transitions(base: str, wf_id: str, runs: int, submitters: int) -> float:
    """Node transitions per second (10 per run)."""
    return 10 * await throughput(base, wf_id, runs, submitters)


async def node_times(base: str, wf_id: str, samples: int) -> list[float]:
    """started → completed of the only node, one run at a time, in seconds."""
    times = []
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        for _ in range(samples):
            run_id = await run_once(client, wf_id)
            log = (await client.get(f"/v1/workflow-runs/{run_id}/log")).json()["data"]
            stamps = {}
            for event in log["events"]:
                stamps.setdefault(event["kind"], dt.datetime.fromisoformat(event["created_at"]))
            delta = stamps["workflow.node.completed"] - stamps["workflow.node.started"]
            times.append(delta.total_seconds())
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--submitters", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-samples", type=int, default=50)
    args = parser.parse_args()
    print(
        f"bench/workers: {args.runs} runs of a 10-node DAG, {args.submitters} in flight, "
        f"{args.workers} worker processes"
    )
    for dialect in dialects():
        with server(dialect) as base, workers(base, args.workers):

            async def scenario() -> tuple[float, float, list[float], list[float]]:
                async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                    builtin = await define(client, "bench-builtin", ten("workflow.noop"))
                    coded = await define(client, "bench-worker", ten("bench.noop"))
                    one_builtin = await define(
                        client, "bench-1-builtin", [{"key": "n", "type": "workflow.noop"}]
                    )
                    one_coded = await define(
                        client, "bench-1-worker", [{"key": "n", "type": "bench.noop"}]
                    )
                base_rate = await transitions(base, builtin, args.runs, args.submitters)
                rate = await transitions(base, coded, args.runs, args.submitters)
                base_times = await node_times(base, one_builtin, args.latency_samples)
                times = await node_times(base, one_coded, args.latency_samples)
                return base_rate, rate, base_times, times

            base_rate, rate, base_times, times = asyncio.run(scenario())
        overhead = (percentile(times, 50) - percentile(base_times, 50)) * 1000
        print(
            f"  {dialect:<10} worker nodes {rate:7.1f} transitions/s (= worker tasks/s) | "
            f"built-in nodes {base_rate:7.1f}/s | ratio {rate / base_rate:4.2f}x | "
            f"node p50 {percentile(times, 50) * 1000:6.1f} ms vs built-in "
            f"{percentile(base_times, 50) * 1000:6.1f} ms: overhead {overhead:6.1f} ms"
        )


if __name__ == "__main__":
    main()
