"""One trace across processes: a caller's span → the SDK's request → the API process's
request span → the job's execution in a separate worker process.

Both server processes export their spans with OpenTelemetry's console exporter (configured
only through `OTEL_*` variables, as an operator would); the caller traces with its own
in-memory exporter. The SDK forwards the caller's current context as `traceparent`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fabric_platform import FabricClient
from fabric_server.testing import free_port


class Process:
    """A `fabric-server` command whose spans (stdout) and logs (stderr) go to files."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], directory: Path) -> None:
        script = shutil.which("fabric-server", path=str(Path(sys.executable).parent))
        assert script is not None
        self.spans_file = directory / f"{name}.spans"
        self.log_file = directory / f"{name}.log"
        with self.spans_file.open("wb") as out, self.log_file.open("wb") as err:
            self.popen = subprocess.Popen([script, *args], env=env, stdout=out, stderr=err)

    def stop(self) -> None:
        """SIGTERM and wait: the tracer provider exports what it buffered on the way out."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def spans(self) -> list[dict[str, Any]]:
        text, decoder, found, at = self.spans_file.read_text(), json.JSONDecoder(), [], 0
        while (start := text.find("{", at)) != -1:
            span, at = decoder.raw_decode(text, start)
            found.append(span)
        return found


@pytest.fixture
def api_and_worker(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Process, Process]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FABRIC_", "OTEL_"))}
    env.update(
        FABRIC_DATABASE_URL=database_url,
        FABRIC_DATA_DIR=str(tmp_path / "data"),
        FABRIC_PORT=str(port),
        FABRIC_WORKER_POLL_INTERVAL="0.05",
        OTEL_TRACES_EXPORTER="console",
    )
    api = Process("api", ["serve", "--no-workers"], {**env, "OTEL_SERVICE_NAME": "api"}, tmp_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert api.popen.poll() is None, api.log_file.read_text()
            try:
                if httpx.get(f"{base_url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, api.log_file.read_text()
            time.sleep(0.05)
        worker = Process("worker", ["worker"], {**env, "OTEL_SERVICE_NAME": "worker"}, tmp_path)
        try:
            yield base_url, api, worker
        finally:
            worker.stop()
    finally:
        api.stop()


def _hex(value: str) -> str:
    return value.removeprefix("0x")


def test_a_callers_trace_runs_through_the_api_into_the_worker_process(
    api_and_worker: tuple[str, Process, Process],
) -> None:
    base_url, api, worker = api_and_worker
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("caller")

    with FabricClient(base_url=base_url) as fabric:
        with tracer.start_as_current_span("nightly-summaries") as caller:
            job = fabric.create_job(modality="text", input={"prompt": "trace me"})
        done = fabric.wait_for_job(job["id"], timeout=30)
    assert done["status"] == "completed"
    trace_id = format(caller.get_span_context().trace_id, "032x")
    caller_span_id = format(caller.get_span_context().span_id, "016x")

    api.stop()
    worker.stop()
    api_spans = [s for s in api.spans() if _hex(s["context"]["trace_id"]) == trace_id]
    worker_spans = [s for s in worker.spans() if _hex(s["context"]["trace_id"]) == trace_id]

    # The API's request span is a child of the caller's span: the SDK forwarded it.
    request = [s for s in api_spans if s["kind"] == "SpanKind.SERVER"]
    assert request, [s["name"] for s in api.spans()]
    assert _hex(request[0]["parent_id"]) == caller_span_id
    assert "/v1/jobs" in request[0]["name"]
    # The job ran in the worker process, in the same trace.
    assert worker_spans, [s["name"] for s in worker.spans()]
    assert all(s["resource"]["attributes"]["service.name"] == "worker" for s in worker_spans)
    assert any(s["attributes"].get("fabric.job_id") == job["id"] for s in worker_spans), [
        (s["name"], s["attributes"]) for s in worker_spans
    ]
