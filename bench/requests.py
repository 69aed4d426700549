"""The cost of single requests against the cheapest one: `POST /v1/jobs` and `GET
/v1/jobs/{id}` as multiples of `GET /v1/health`, one request at a time.

The three are interleaved in rounds so drift on the machine affects them alike. Goals:
`POST /v1/jobs` at most 3x, `GET /v1/jobs/{id}` at most 2x the health check.
Usage: `python bench/requests.py [--calls 300] [--rounds 10]` (PostgreSQL too when
FABRIC_BENCH_DATABASE_URL or FABRIC_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import httpx
from _harness import dialects, median, server

JOB = {"modality": "text", "input": {"prompt": "bench"}}


def timed(call: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(f"bench/requests: {args.calls} x {args.rounds} sequential requests each")
    for dialect in dialects():
        with server(dialect) as base, httpx.Client(base_url=base) as http:
            job_id = http.post("/v1/jobs", json=JOB).json()["data"]["id"]

            def health() -> object:
                return http.get("/v1/health").raise_for_status()

            def create() -> object:
                return http.post("/v1/jobs", json=JOB).raise_for_status()

            def read(job_id: str = job_id) -> object:
                return http.get(f"/v1/jobs/{job_id}").raise_for_status()

            calls = {"health": health, "create": create, "read": read}
            samples: dict[str, list[float]] = {name: [] for name in calls}
            for call in calls.values():
                timed(call, 50)  # warm-up
            for _ in range(args.rounds):
                for name, call in calls.items():
                    samples[name].extend(timed(call, args.calls))
        base_ms = median(samples["health"]) * 1000
        create_ms = median(samples["create"]) * 1000
        read_ms = median(samples["read"]) * 1000
        print(
            f"  {dialect:<10} GET /v1/health {base_ms:5.2f} ms | POST /v1/jobs {create_ms:5.2f} ms"
            f" ({create_ms / base_ms:4.2f}x, goal <= 3) | GET /v1/jobs/{{id}} {read_ms:5.2f} ms"
            f" ({read_ms / base_ms:4.2f}x, goal <= 2)"
        )


if __name__ == "__main__":
    main()
