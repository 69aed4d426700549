"""Metric definitions and the scrape body.

Every update is an in-memory counter or histogram change; nothing here touches the
database. With `PROMETHEUS_MULTIPROC_DIR` set, the processes of `serve --workers N`
write to that directory and each scrape aggregates them; otherwise every process
answers for itself.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "fabric_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "fabric_http_request_duration_seconds",
    "HTTP request latency by route template and method.",
    ["route", "method"],
)
WRITER_BATCH = Histogram(
    "fabric_db_commit_batch_size",
    "Writes folded into one group commit.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def scrape() -> bytes:
    """The Prometheus text body for this process (or all processes in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
