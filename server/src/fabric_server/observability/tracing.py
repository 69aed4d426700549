"""OpenTelemetry tracing, configured only by the standard `OTEL_*` environment variables.

Off (no provider, nothing recorded, nothing exported) unless `OTEL_TRACES_EXPORTER` names an
exporter or an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true` turns it off whatever else
is set. The sampler (`OTEL_TRACES_SAMPLER`), the resource (`OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`) and batching (`OTEL_BSP_*`) are read by the SDK itself.

Requests get a server span each (FastAPI's own, given our provider). A work item created
while a span is current carries that span's W3C `traceparent` in its payload; the worker
runs the item in a span that continues that trace, so `POST /v1/jobs` and the job's
execution are one trace, and so are a workflow run's nodes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, TypeVar

from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

log = logging.getLogger("fabric_server.observability")

T = TypeVar("T")
R = TypeVar("R")
TRACEPARENT = "traceparent"
_EXPORTER_GROUP = "opentelemetry_traces_exporter"
_SERVICE_NAME = "fabric-server"


@dataclass
class Tracing:
    """The tracer provider of this process (None: tracing is off)."""

    provider: TracerProvider | None = None

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    @property
    def tracer(self) -> trace.Tracer:
        if self.provider is None:
            return trace.NoOpTracer()
        return self.provider.get_tracer("fabric_server")

    def shutdown(self) -> None:
        """Export what is buffered, then stop."""
        if self.provider is not None:
            self.provider.shutdown()


def tracing_from_env(environ: Mapping[str, str] | None = None) -> Tracing:
    """Tracing as the `OTEL_*` variables of `environ` (default: the process's) ask."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Tracing()
    names = env.get("OTEL_TRACES_EXPORTER", "").strip()
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not names and not endpoint:
        return Tracing()
    exporters = [
        exporter
        for name in (names or "otlp").split(",")
        if (exporter := _exporter(name.strip().lower(), env)) is not None
    ]
    if not exporters:
        return Tracing()
    return Tracing(provider_with(exporters, env))


def provider_with(
    exporters: list[SpanExporter], environ: Mapping[str, str] | None = None
) -> TracerProvider:
    """A provider batching spans to `exporters`, named `fabric-server` unless the
    environment names the service."""
    env = os.environ if environ is None else environ
    attributes: dict[str, str] = {}
    if env.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = env["OTEL_SERVICE_NAME"]
    elif "service.name=" not in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        attributes["service.name"] = _SERVICE_NAME
    resource = Resource.create(attributes)
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _exporter(name: str, env: Mapping[str, str]) -> SpanExporter | None:
    if name in ("", "none"):
        return None
    if name == "otlp":
        protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        name = "otlp_proto_grpc" if protocol.strip() == "grpc" else "otlp_proto_http"
    found = list(entry_points(group=_EXPORTER_GROUP, name=name))
    if not found:
        log.warning(
            "OTEL_TRACES_EXPORTER asks for the %r span exporter, which is not installed; "
            "traces are not sent there",
            name,
        )
        return None
    exporter: SpanExporter = found[0].load()()
    return exporter


def telemetry_config(tracing: Tracing) -> TelemetryConfig:
    """FastAPI's own request spans: sent to our provider when tracing is on, off otherwise
    (whatever global provider a library may have installed)."""
    if tracing.provider is None:
        return {"tracing": False, "metrics": False, "logs": False}
    # No spans around each dependency and serialization: one span per request.
    return {
        "tracer_provider": tracing.provider,
        "metrics": False,
        "logs": False,
        "operation_spans": False,
    }


def with_trace_context(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` with the current span's `traceparent` added (unchanged without one)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return payload
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if TRACEPARENT not in carrier:
        return payload
    return {**payload, TRACEPARENT: carrier[TRACEPARENT]}


def carry_trace(unit: Callable[[T], R]) -> Callable[[T], R]:
    """`unit`, to be run in another task or thread (the group-commit writer), made to run
    in the caller's trace, so work items it creates continue it (unchanged without one)."""
    caller = otel_context.get_current()
    if not trace.get_current_span(caller).get_span_context().is_valid:
        return unit

    def in_caller_trace(arg: T) -> R:
        token = otel_context.attach(caller)
        try:
            return unit(arg)
        finally:
            otel_context.detach(token)

    return in_caller_trace


def context_of(payload: Mapping[str, Any]) -> Context | None:
    """The trace context a work item's payload carries, if any."""
    value = payload.get(TRACEPARENT)
    if not isinstance(value, str):
        return None
    return propagate.extract({TRACEPARENT: value})
