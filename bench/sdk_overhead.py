"""SDK overhead: median time per `get_job` through `FabricClient` vs a raw `httpx.Client`.

Both hit the same real server in the same run, interleaved in rounds so drift on the machine
affects them alike. The goal is a ratio of at most 1.10.
Usage: `python bench/sdk_overhead.py [--calls 2000]`.
"""

from __future__ import annotations

import argparse
import time

import httpx
from _harness import median, server

from fabric_platform import FabricClient


def timed(call: object, n: int) -> list[float]:
    assert callable(call)
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with server("sqlite", FABRIC_RUN_WORKERS="false") as base:
        raw = httpx.Client(base_url=base, headers={"Content-Type": "application/json"})
        sdk = FabricClient(base_url=base)
        job_id = sdk.create_job(modality="text", input={"prompt": "bench"})["id"]

        def raw_get() -> object:
            response = raw.get(f"/v1/jobs/{job_id}")
            response.raise_for_status()
            return response.json()["data"]

        def sdk_get() -> object:
            return sdk.get_job(job_id)

        assert raw_get() == sdk_get()
        timed(raw_get, 200)  # warm-up
        timed(sdk_get, 200)
        raw_samples: list[float] = []
        sdk_samples: list[float] = []
        per_round = max(1, args.calls // args.rounds)
        for _ in range(args.rounds):
            raw_samples += timed(raw_get, per_round)
            sdk_samples += timed(sdk_get, per_round)
        raw.close()
        sdk.close()
    raw_ms, sdk_ms = median(raw_samples) * 1000, median(sdk_samples) * 1000
    print(f"bench/sdk_overhead: {len(sdk_samples)} get_job calls each")
    print(f"  raw httpx.Client  median {raw_ms:.3f} ms")
    print(f"  FabricClient      median {sdk_ms:.3f} ms")
    print(f"  ratio SDK/raw     {sdk_ms / raw_ms:.3f}  (goal <= 1.10)")


if __name__ == "__main__":
    main()
