"""A fan-out of many child runs: the time from starting the parent to its completion.

The parent's one `workflow.fan_out` node starts one child run (a single `workflow.noop`)
per item, waits for them all, and completes. Baseline measured in the same run: a parent
whose fan-out has a single item. Usage: `python bench/fanout.py [--children 1000]`
(PostgreSQL too when FABRIC_BENCH_DATABASE_URL or FABRIC_TEST_DATABASE_URL is set). Goal:
1,000 children in at most 5 s.
"""

from __future__ import annotations

import argparse
import time

import httpx
from _harness import dialects, server

CHILD = [{"key": "only", "operation": "workflow.noop"}]
PARENT = [
    {
        "key": "spread",
        "operation": "workflow.fan_out",
        "config": {"workflow_name": "bench-child"},
        "inputs": {"items": "$context.items"},
    }
]


def fan_out(http: httpx.Client, definition_id: str, children: int) -> float:
    started = time.perf_counter()
    created = http.post(
        "/v1/workflow-runs",
        json={"workflow_definition_id": definition_id, "context": {"items": list(range(children))}},
    )
    run_id = created.json()["data"]["id"]
    http.post(f"/v1/workflow-runs/{run_id}/start", json={}).raise_for_status()
    while True:
        run = http.get(f"/v1/workflow-runs/{run_id}", params={"wait": 60}).json()["data"]
        if run["status"] in ("completed", "failed", "cancelled"):
            break
    elapsed = time.perf_counter() - started
    if run["status"] != "completed":
        raise RuntimeError(f"the fan-out ended {run['status']}: {run.get('error')}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=1000)
    args = parser.parse_args()
    print(f"bench/fanout: one fan-out node starting {args.children} child runs")
    for dialect in dialects():
        with server(dialect) as base, httpx.Client(base_url=base, timeout=120) as http:
            http.post(
                "/v1/workflow-definitions", json={"name": "bench-child", "nodes": CHILD}
            ).raise_for_status()
            parent = http.post(
                "/v1/workflow-definitions", json={"name": "bench-parent", "nodes": PARENT}
            ).json()["data"]["id"]
            single = min(fan_out(http, parent, 1) for _ in range(3))
            many = fan_out(http, parent, args.children)
        print(
            f"  {dialect:<10} {args.children} children {many:6.2f} s "
            f"({args.children / many:6.1f} child runs/s; goal <= 5 s) | one child {single:5.3f} s"
        )


if __name__ == "__main__":
    main()
