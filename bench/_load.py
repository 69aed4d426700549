"""The load loop shared by every peer in `peers.py`: standard library only, so the Celery side
(run with its own interpreter) measures exactly as the Fabric side does.

A *unit* is one call of the client under test: it submits one job (or one batch) and returns
once every job of it is seen finished, with one entry per job: the seconds from submit to
completed, or None for a job that failed or was not seen completed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Unit = Callable[[], list[float | None]]


def drive(units: list[Unit], jobs: int, size: int = 1) -> dict[str, Any]:
    """Run `units` (one per thread, each with its own client) at once until `jobs` jobs were
    submitted, `size` jobs per call."""
    lock = threading.Lock()
    remaining = jobs
    results: list[float | None] = []
    errors: list[str] = []
    start = threading.Barrier(len(units) + 1)

    def submitter(unit: Unit) -> None:
        nonlocal remaining
        start.wait()
        while True:
            with lock:
                if remaining <= 0:
                    return
                remaining -= size
            try:
                done = unit()
            except Exception as exc:  # a failed call is failed jobs, not a crashed benchmark
                done = [None] * size
                with lock:
                    if len(errors) < 5:
                        errors.append(f"{type(exc).__name__}: {exc}"[:300])
            with lock:
                results.extend(done)

    threads = [threading.Thread(target=submitter, args=(unit,)) for unit in units]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - began
    return summarize(results, took, errors)


def summarize(results: list[float | None], took: float, errors: list[str]) -> dict[str, Any]:
    done = [r for r in results if r is not None]
    return {
        "jobs": len(results),
        "failed": len(results) - len(done),
        "seconds": took,
        "rate": len(done) / took if took else 0.0,
        "p50_ms": percentile(done, 50) * 1000,
        "p99_ms": percentile(done, 99) * 1000,
        "errors": errors,
    }


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


def measure(units: list[Unit], jobs: int, samples: int, size: int = 1) -> dict[str, Any]:
    """A warm-up that opens every client's connections, `jobs` jobs from all `units` at once,
    then `samples` jobs one call at a time."""
    warmup = drive(units, max(2 * len(units), len(units) * size), size)
    loaded = drive(units, jobs, size)
    alone = drive(units[:1], samples, size)
    return {"warmup": warmup, "loaded": loaded, "alone": alone}
