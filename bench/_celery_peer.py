"""The Celery side of `peers.py`, run with the interpreter of a separate venv holding Celery.

`python _celery_peer.py worker REDIS_URL CONCURRENCY POOL` runs a Celery worker with a no-op
task (broker and result backend on the same Redis);
`python _celery_peer.py client REDIS_URL single|group JOBS SUBMITTERS SAMPLES` measures
`noop.delay().get()` or `group(...).apply_async().get()` of 50 tasks with the same load loop as
the Fabric side and prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from _load import Unit, measure
from celery import Celery, group

BATCH = 50
TIMEOUT = 30.0


def make_app(redis_url: str) -> Celery:
    app = Celery("fabric_bench_peer", broker=redis_url, backend=redis_url)
    # Defaults otherwise: the configuration most Celery users start from.
    app.conf.broker_connection_retry_on_startup = True
    app.conf.worker_hijack_root_logger = False
    return app


def register(app: Celery) -> Any:
    @app.task(name="bench.noop")
    def noop(prompt: str) -> dict[str, str]:
        return {"text": prompt}  # what Fabric's echo provider answers

    return noop


def single_unit(noop: Any) -> Unit:
    def unit() -> list[float | None]:
        started = time.perf_counter()
        value = noop.delay("hi").get(timeout=TIMEOUT)
        return [time.perf_counter() - started if value == {"text": "hi"} else None]

    return unit


def group_unit(noop: Any) -> Unit:
    def unit() -> list[float | None]:
        started = time.perf_counter()
        seen: list[float | None] = []

        def arrived(task_id: str, value: Any) -> None:
            seen.append(time.perf_counter() - started if value == {"text": "hi"} else None)

        group(noop.s("hi") for _ in range(BATCH)).apply_async().get(
            timeout=TIMEOUT, callback=arrived
        )
        return seen + [None] * (BATCH - len(seen))

    return unit


def client(redis_url: str, mode: str, jobs: int, submitters: int, samples: int) -> dict[str, Any]:
    app = make_app(redis_url)
    noop = register(app)
    noop.delay("hi").get(timeout=120)  # the worker is up
    if mode == "group":
        return measure([group_unit(noop) for _ in range(submitters)], jobs, samples, BATCH)
    return measure([single_unit(noop) for _ in range(submitters)], jobs, samples)


def worker(redis_url: str, concurrency: str, pool: str) -> None:
    app = make_app(redis_url)
    register(app)
    app.worker_main(
        ["worker", f"--concurrency={concurrency}", f"--pool={pool}", "--loglevel=WARNING"]
    )


if __name__ == "__main__":
    command, url, *rest = sys.argv[1:]
    if command == "worker":
        worker(url, *rest)
    else:
        mode, *counts = rest
        jobs, submitters, samples = (int(value) for value in counts)
        print(json.dumps(client(url, mode, jobs, submitters, samples)))
