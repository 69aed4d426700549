"""Event fan-out: latency from an event's write to its receipt by 1, 100 and 500 SSE subscribers.

Each subscriber holds `GET /v1/events/stream` open on a raw socket (so the client's own cost
stays small) and stamps every `data:` line with the wall clock as it arrives; the latency of
an event is that stamp minus the event's `created_at` (set just before its transaction
commits). Jobs are submitted one at a time; the next starts once every subscriber has seen
the previous job's `job.completed`. Baselines measured in the same run: a plain
`GET /v1/health` round trip, and the 1-subscriber latency.

Usage: `python bench/events.py [--jobs 30] [--subscribers 1,100,500] [--append docs/benchmarks.md]`
(PostgreSQL too when FABRIC_BENCH_DATABASE_URL or FABRIC_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from _harness import dialects, median, percentile, server


class Subscriber:
    def __init__(self) -> None:
        self.lines: list[tuple[float, bytes]] = []
        self.completed: set[bytes] = set()
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run(self, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        request = (
            f"GET /v1/events/stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        try:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass  # response headers
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line.startswith(b": connected"):
                    self.ready.set()
                elif line.startswith(b"data: {"):
                    self.lines.append((time.time(), line))
                    if b'"job.completed"' in line:
                        self.completed.add(json.loads(line[6:])["job_id"].encode())
        finally:
            writer.close()

    def start(self, host: str, port: int) -> None:
        self._task = asyncio.create_task(self.run(host, port))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def latencies(self) -> list[float]:
        values = []
        for received, line in self.lines:
            event = json.loads(line[6:])
            written = dt.datetime.fromisoformat(event["created_at"]).timestamp()
            values.append(received - written)
        return values


async def fan_out(base: str, subscribers: int, jobs: int) -> list[float]:
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    crowd = [Subscriber() for _ in range(subscribers)]
    for subscriber in crowd:
        subscriber.start(host, port)
    try:
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in crowd)), 120)
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            for _ in range(jobs):
                response = await client.post(
                    "/v1/jobs", json={"modality": "text", "input": {"prompt": "bench"}}
                )
                job_id = response.json()["data"]["id"].encode()
                deadline = time.monotonic() + 60
                while not all(job_id in s.completed for s in crowd):
                    if time.monotonic() > deadline:
                        raise RuntimeError("subscribers did not receive every event")
                    await asyncio.sleep(0.001)
    finally:
        for subscriber in crowd:
            subscriber.stop()
    return [value for subscriber in crowd for value in subscriber.latencies()]


async def health_latency(base: str, samples: int = 100) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _ in range(10):
            await client.get("/v1/health")
        values = []
        for _ in range(samples):
            started = time.perf_counter()
            await client.get("/v1/health")
            values.append(time.perf_counter() - started)
    return median(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=30, help="jobs per subscriber count")
    parser.add_argument("--subscribers", default="1,100,500")
    parser.add_argument("--append", type=Path, help="append a Markdown table to this file")
    args = parser.parse_args()
    counts = [int(n) for n in args.subscribers.split(",")]
    print(f"bench/events: {args.jobs} jobs (3 events each) per run, subscribers {counts}")
    rows = []
    for dialect in dialects():
        with server(dialect, FABRIC_SSE_KEEPALIVE_SECONDS="600") as base:
            health = asyncio.run(health_latency(base)) * 1000
            baseline_p50 = None
            for count in counts:
                values = asyncio.run(fan_out(base, count, args.jobs))
                p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
                baseline_p50 = baseline_p50 or p50
                rows.append((dialect, count, len(values), p50, p99, p50 / baseline_p50, health))
                print(
                    f"  {dialect:<10} {count:>4} subscribers: {len(values):6d} receipts | "
                    f"p50 {p50:7.2f} ms p99 {p99:7.2f} ms | p50 vs 1 subscriber "
                    f"{p50 / baseline_p50:5.1f}x | GET /v1/health {health:5.2f} ms "
                    f"(p50 {p50 / health:5.1f}x)"
                )
    if args.append:
        machine = (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        )
        lines = [
            "",
            f"### Event fan-out ({dt.date.today().isoformat()}, {machine})",
            "",
            f"`python bench/events.py --jobs {args.jobs}`: latency from an event's write to "
            "its receipt by every subscriber of `GET /v1/events/stream`.",
            "",
            "| Database | Subscribers | Receipts | p50 ms | p99 ms | p50 vs 1 subscriber "
            "| GET /v1/health ms |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for dialect, count, n, p50, p99, ratio, health in rows:
            lines.append(
                f"| {dialect} | {count} | {n} | {p50:.2f} | {p99:.2f} | {ratio:.1f}x "
                f"| {health:.2f} |"
            )
        with args.append.open("a") as handle:
            handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
