"""OpenTelemetry: off unless OTEL_* asks; with it, one trace from `POST /v1/jobs` through
the queue to the worker, and through a workflow run's nodes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from server_helpers import eventually, wait_for_job
from sqlalchemy import select
from webhook_helpers import create_webhook
from webhook_receiver import Received, Receiver
from workflow_helpers import define, start, wait_for_run

from fabric_server.app import create_app
from fabric_server.engine.models import WorkItem
from fabric_server.jobs.service import JOB_WORK_KIND
from fabric_server.observability.tracing import Tracing, tracing_from_env
from fabric_server.services import Services, build_services
from fabric_server.settings import Settings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@asynccontextmanager
async def traced_app(
    settings: Settings, tracing: Tracing
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    services = build_services(settings, tracing=tracing)
    app = create_app(services=services)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://fabric.test") as c:
                yield c, services
    finally:
        await services.db.dispose()


def _in_memory() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider), exporter


def _trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def test_tracing_is_off_unless_the_environment_asks() -> None:
    assert not tracing_from_env({}).enabled
    assert not tracing_from_env({"OTEL_SERVICE_NAME": "fabric"}).enabled
    disabled = {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}
    assert not tracing_from_env(disabled).enabled
    assert not tracing_from_env({"OTEL_TRACES_EXPORTER": "none"}).enabled
    console = tracing_from_env({"OTEL_TRACES_EXPORTER": "console"})
    assert console.enabled
    console.shutdown()
    otlp = tracing_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert otlp.enabled
    assert otlp.provider is not None
    assert otlp.provider.resource.attributes["service.name"] == "fabric-server"
    named = tracing_from_env({"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "fabric-eu"})
    assert named.provider is not None
    assert named.provider.resource.attributes["service.name"] == "fabric-eu"
    named.shutdown()


def test_an_exporter_that_is_not_installed_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fabric_server.observability"):
        assert not tracing_from_env({"OTEL_TRACES_EXPORTER": "zipkin_json"}).enabled
    assert "zipkin_json" in caplog.text


async def test_a_job_is_one_trace_from_the_request_to_the_worker(settings: Settings) -> None:
    tracing, exporter = _in_memory()
    async with traced_app(settings, tracing) as (client, services):
        created = await client.post(
            "/v1/jobs",
            json={"modality": "text", "input": {"prompt": "trace me"}},
            headers={"traceparent": TRACEPARENT},
        )
        assert created.status_code == 201, created.text
        job_id = created.json()["data"]["id"]
        await wait_for_job(client, job_id, "completed")
        async with services.db.read() as session:
            item = await session.scalar(
                select(WorkItem).where(WorkItem.kind == JOB_WORK_KIND, WorkItem.ref_id == job_id)
            )
        assert item is not None
        assert item.payload["traceparent"].split("-")[1] == TRACE_ID

    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind == SpanKind.SERVER and _trace_id(s) == TRACE_ID]
    assert [s.name for s in server] == ["POST /v1/jobs"]
    assert server[0].attributes is not None
    assert str(server[0].attributes["fabric.request_id"]) == created.headers["x-request-id"]
    work = [s for s in spans if s.name == f"work {JOB_WORK_KIND}"]
    assert len(work) == 1
    assert work[0].kind == SpanKind.CONSUMER
    assert _trace_id(work[0]) == TRACE_ID
    assert work[0].attributes is not None
    assert work[0].attributes["fabric.job_id"] == job_id


async def test_a_workflow_run_traces_through_its_nodes(settings: Settings) -> None:
    tracing, exporter = _in_memory()
    async with traced_app(settings, tracing) as (client, _):
        definition = await define(
            client,
            [
                {"key": "a", "operation": "workflow.noop"},
                {"key": "b", "operation": "workflow.noop", "depends_on": ["a"]},
            ],
        )
        run = await start(client, definition["id"])
        assert (await wait_for_run(client, run["id"]))["status"] == "completed"

    spans = exporter.get_finished_spans()
    started = next(s for s in spans if s.name == "POST /v1/workflow-runs/{run_id}/start")
    trace_id = _trace_id(started)
    nodes = [s for s in spans if s.name == "work workflow.node"]
    assert len(nodes) == 2
    assert {_trace_id(s) for s in nodes} == {trace_id}
    assert all(s.attributes and s.attributes["fabric.run_id"] == run["id"] for s in nodes)


async def test_without_tracing_nothing_is_added_to_work_items(settings: Settings) -> None:
    async with traced_app(settings, Tracing()) as (client, services):
        created = await client.post(
            "/v1/jobs",
            json={"modality": "text", "input": {"prompt": "untraced"}},
            headers={"traceparent": TRACEPARENT},
        )
        job_id = created.json()["data"]["id"]
        await wait_for_job(client, job_id, "completed")
        async with services.db.read() as session:
            item = await session.scalar(select(WorkItem).where(WorkItem.ref_id == job_id))
        assert item is not None
        assert "traceparent" not in item.payload


async def test_outbound_calls_carry_the_trace(settings: Settings) -> None:
    """A webhook delivery and an `http.request` node send the `traceparent` of the trace
    they run in, so the receiving service can join it."""
    tracing, _ = _in_memory()
    with Receiver() as receiver:
        async with traced_app(settings, tracing) as (client, _):
            await create_webhook(client, receiver.url, events=["job.completed"])
            created = await client.post(
                "/v1/jobs",
                json={"modality": "text", "input": {"prompt": "trace me"}},
                headers={"traceparent": TRACEPARENT},
            )
            await wait_for_job(client, created.json()["data"]["id"], "completed")
            definition = await define(
                client,
                [
                    {
                        "key": "call",
                        "operation": "http.request",
                        "config": {"url": receiver.url, "method": "post", "json": {"n": 1}},
                    }
                ],
            )
            response = await client.post(
                "/v1/workflow-runs",
                json={"workflow_definition_id": definition["id"]},
                headers={"traceparent": TRACEPARENT},
            )
            run = response.json()["data"]
            await client.post(
                f"/v1/workflow-runs/{run['id']}/start",
                json={},
                headers={"traceparent": TRACEPARENT},
            )
            finished = await wait_for_run(client, run["id"])
            assert finished["status"] == "completed", str(finished)
            await eventually(requests_of(receiver), lambda got: len(got) >= 2)

    delivery = next(r for r in receiver.requests if r.headers.get("x-fabric-delivery"))
    node_call = next(r for r in receiver.requests if not r.headers.get("x-fabric-delivery"))
    for request in (delivery, node_call):
        assert request.headers["traceparent"].split("-")[1] == TRACE_ID


async def test_without_tracing_outbound_calls_carry_no_trace(settings: Settings) -> None:
    with Receiver() as receiver:
        async with traced_app(settings, Tracing()) as (client, _):
            await create_webhook(client, receiver.url, events=["job.completed"])
            created = await client.post(
                "/v1/jobs", json={"modality": "text", "input": {"prompt": "untraced"}}
            )
            await wait_for_job(client, created.json()["data"]["id"], "completed")
            await eventually(requests_of(receiver), lambda got: len(got) >= 1)
    assert "traceparent" not in receiver.requests[0].headers


def requests_of(receiver: Receiver) -> Callable[[], Awaitable[list[Received]]]:
    async def probe() -> list[Received]:
        return list(receiver.requests)

    return probe


async def test_every_provider_call_is_a_client_span_of_its_callers_trace(
    settings: Settings,
) -> None:
    """Jobs, `ai.generate` nodes and the execute routes call providers through the one
    provider-call use case: each call is a `provider.*` client span in the caller's trace,
    with the provider, model, tokens and cost."""
    tracing, exporter = _in_memory()
    headers = {"traceparent": TRACEPARENT}
    async with traced_app(settings, tracing) as (client, _):
        created = await client.post(
            "/v1/jobs", json={"modality": "text", "input": {"prompt": "a job"}}, headers=headers
        )
        await wait_for_job(client, created.json()["data"]["id"], "completed")
        executed = await client.post(
            "/v1/providers/execute",
            json={"modality": "text", "input": {"prompt": "direct"}},
            headers=headers,
        )
        assert executed.status_code == 200, executed.text
        streamed = await client.post(
            "/v1/providers/execute/stream",
            json={"modality": "text", "input": {"prompt": "streamed"}},
            headers=headers,
        )
        assert "event: completed" in streamed.text
        definition = await define(
            client,
            [{"key": "ask", "operation": "ai.generate", "config": {"prompt_template": "hi"}}],
        )
        run = await start(client, definition["id"])
        assert (await wait_for_run(client, run["id"]))["status"] == "completed"

    spans = exporter.get_finished_spans()
    calls = [s for s in spans if s.name.startswith("provider.")]
    assert sorted(s.name for s in calls) == [
        "provider.execute",
        "provider.execute",
        "provider.execute",
        "provider.stream",
    ]
    assert all(s.kind == SpanKind.CLIENT for s in calls)
    in_request_trace = [s for s in calls if _trace_id(s) == TRACE_ID]
    assert len(in_request_trace) == 3  # the job, the direct call and the stream
    for span in calls:
        assert span.attributes is not None
        assert span.attributes["fabric.provider.id"] == "echo"
        assert span.attributes["fabric.provider.cost_usd"] == 0.0
