"""Metric definitions and the scrape body.

Every update is an in-memory counter or histogram change; nothing here touches the
database. With `PROMETHEUS_MULTIPROC_DIR` set, the processes of `serve --workers N`
write to that directory and each scrape aggregates them; otherwise every process
answers for itself. Values read from the database or the engine at scrape time (queue
depth, pool use) come from a collector the scrape is given (`engine.gauges`).
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

from fabric_server.observability.labels import LabelValues

# Seconds, from a fast HTTP call to a long workflow.
LONG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600)

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

# -- jobs, workflow runs and nodes (counted from committed events) ---------------------------

JOBS_STARTED = Counter("fabric_jobs_started_total", "Job attempts started.")
JOBS_FINISHED = Counter(
    "fabric_jobs_finished_total", "Jobs finished, by outcome (completed, failed).", ["outcome"]
)
JOB_DURATION = Histogram(
    "fabric_job_duration_seconds",
    "From a job's first start to its end, by outcome.",
    ["outcome"],
    buckets=LONG_BUCKETS,
)
RUNS_STARTED = Counter("fabric_workflow_runs_started_total", "Workflow runs started.")
RUNS_FINISHED = Counter(
    "fabric_workflow_runs_finished_total",
    "Workflow runs ended, by outcome (completed, failed, cancelled).",
    ["outcome"],
)
RUN_DURATION = Histogram(
    "fabric_workflow_run_duration_seconds",
    "From a workflow run's start to its end, by outcome.",
    ["outcome"],
    buckets=LONG_BUCKETS,
)
NODES_STARTED = Counter(
    "fabric_workflow_nodes_started_total",
    "Workflow node attempts started, by operation.",
    ["operation"],
)
NODES_FINISHED = Counter(
    "fabric_workflow_nodes_finished_total",
    "Workflow nodes finished, by operation and outcome (completed, failed).",
    ["operation", "outcome"],
)
NODE_DURATION = Histogram(
    "fabric_workflow_node_duration_seconds",
    "From a workflow node's first attempt to its end, by operation and outcome.",
    ["operation", "outcome"],
    buckets=LONG_BUCKETS,
)
OPERATIONS = LabelValues(100)

# -- providers -------------------------------------------------------------------------------

PROVIDER_CALLS = Counter(
    "fabric_provider_calls_total",
    "Calls to model providers, by provider, model and outcome (ok or an error code).",
    ["provider", "model", "outcome"],
)
PROVIDER_LATENCY = Histogram(
    "fabric_provider_call_duration_seconds",
    "Model provider call latency, by provider and model.",
    ["provider", "model"],
    buckets=LONG_BUCKETS,
)
PROVIDER_TOKENS = Counter(
    "fabric_provider_tokens_total",
    "Tokens used by model provider calls, by provider, model and direction (input, output).",
    ["provider", "model", "direction"],
)
PROVIDER_COST = Counter(
    "fabric_provider_cost_usd_total",
    "Priced cost of model provider calls in US dollars, by provider and model.",
    ["provider", "model"],
)
PROVIDERS = LabelValues(50)
MODELS = LabelValues(200)

# -- webhooks, streams, schedules ----------------------------------------------------------

WEBHOOK_ATTEMPTS = Counter(
    "fabric_webhook_delivery_attempts_total",
    "Webhook delivery attempts, by outcome (succeeded, retrying, failed) and attempt number.",
    ["outcome", "attempt"],
)
WEBHOOK_LATENCY = Histogram(
    "fabric_webhook_delivery_duration_seconds",
    "Time for a webhook receiver to answer one delivery attempt.",
    ["outcome"],
)
WORKER_TASKS = Counter(
    "fabric_worker_tasks_total",
    "Code workers' tasks by operation and event (dispatched: queued for a worker; "
    "claimed: a worker took it).",
    ["operation", "event"],
)
WORKER_TASK_WAIT = Histogram(
    "fabric_worker_task_wait_seconds",
    "Time from a task being queued to a code worker taking it, by operation.",
    ["operation"],
)
SSE_OPEN = Gauge(
    "fabric_sse_open_streams",
    "Server-sent event streams open now.",
    multiprocess_mode="livesum",
)
SCHEDULE_FIRINGS = Counter(
    "fabric_schedule_firings_total",
    "Schedule occurrences, by trigger (cron, manual) and outcome (fired, skipped, missed).",
    ["trigger", "outcome"],
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def multiprocess_dir() -> Path | None:
    """The directory the processes share their metrics through, when one is set."""
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def clear_multiprocess_dir() -> None:
    """Forget earlier runs' values (before any process of this run has started)."""
    directory = multiprocess_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)


def process_exited(pid: int) -> None:
    """A process of this run is gone: its live gauges (open streams) stop counting."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def scrape(state: Collector | None = None) -> bytes:
    """The Prometheus text body for this process (or all processes in multiprocess mode),
    followed by what `state` reports at scrape time."""
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if state is None:
        return body
    extra = CollectorRegistry(auto_describe=False)
    extra.register(state)
    return body + generate_latest(extra)
