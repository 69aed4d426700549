"""Server logging: plain text or one JSON object per line, with the context of the request
or work item a record was written in.

`configure_logging` installs one stderr handler on the root logger. The context comes from
context variables: the access-log middleware opens a `RequestLog` per HTTP request (its
request id, route, principal and organization are read from the request as they become
known), and a worker binds the work item it runs (`bind_work`). Every record, whatever
logger wrote it, passes through `redact`, so token-shaped strings never reach the output.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry import trace
from starlette.types import Scope

from fabric_server.request_context import current_request

# Libraries that log what they send and receive (SQL parameters and rows, HTTP headers)
# below WARNING: kept at WARNING whatever the server's level, so debug logs stay free of
# stored values and credentials.
QUIET_LOGGERS = ("sqlalchemy", "aiosqlite", "asyncpg", "httpx", "httpcore", "hpack", "h2")

_SECRET_PATTERNS = (
    # query parameters that carry credentials (mailed links, OAuth callbacks)
    re.compile(
        r"(?P<keep>(?:^|[?&\s])(?:token|code|state|access_token|refresh_token|api_key|key|"
        r"password|secret)=)[^&\s\"']+",
        re.IGNORECASE,
    ),
    # the same names as JSON fields (a body or a dict printed into a message)
    re.compile(
        r"(?P<keep>[\"'](?:token|access_token|refresh_token|api_key|key|password|secret)"
        r"[\"']\s*:\s*[\"'])[^\"']+",
        re.IGNORECASE,
    ),
    # Authorization header values
    re.compile(r"(?P<keep>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
    # Fabric API keys, webhook signing secrets, provider keys, JWTs
    re.compile(r"(?P<keep>)\b(?:fab|whsec|sk|sk-ant)[_-][A-Za-z0-9_-]{8,}"),
    re.compile(r"(?P<keep>)\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"),
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """`text` with credential-shaped parts replaced by `[redacted]`."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group("keep") + REDACTED, text)
    return text


@dataclass
class RequestLog:
    """The HTTP request a record belongs to; fields are read from the request when a record
    is written, so ones learnt late (the principal, the organization) still show."""

    scope: Scope

    def fields(self) -> dict[str, Any]:
        state = self.scope.get("state") or {}
        found: dict[str, Any] = {
            "request_id": state.get("request_id"),
            "method": self.scope.get("method"),
        }
        route = getattr(self.scope.get("route"), "path", None)
        if isinstance(route, str):
            found["route"] = route
        principal = state.get("principal")
        if principal is not None:
            found["principal_id"] = getattr(principal, "id", None)
            found["organization_id"] = getattr(principal, "organization_id", None)
        audit = current_request.get()
        if audit is not None and audit.organization_id:
            found["organization_id"] = audit.organization_id
        return {key: value for key, value in found.items() if value is not None}


@dataclass
class WorkLog:
    """The work item a record belongs to."""

    values: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        return self.values


_request_log: contextvars.ContextVar[RequestLog | None] = contextvars.ContextVar(
    "fabric_request_log", default=None
)
_work_log: contextvars.ContextVar[WorkLog | None] = contextvars.ContextVar(
    "fabric_work_log", default=None
)

# What the reference of each kind of work item is (the id a reader looks for).
_REF_FIELD = {
    "job.execute": "job_id",
    "workflow.run.start": "run_id",
    "workflow.run.cancel": "run_id",
    "workflow.node": "node_id",
    "workflow.node.timeout": "node_id",
    "webhook.deliver": "delivery_id",
}


def open_request(scope: Scope) -> contextvars.Token[RequestLog | None]:
    return _request_log.set(RequestLog(scope))


def close_request(token: contextvars.Token[RequestLog | None]) -> None:
    _request_log.reset(token)


def bind_work(item: Any) -> dict[str, Any]:
    """Records written from now on in this task belong to work item `item` (call it in the
    item's own task). Returns the fields bound."""
    values: dict[str, Any] = {"work_kind": item.kind, "work_item_id": item.id}
    if item.organization_id:
        values["organization_id"] = item.organization_id
    if item.ref_id:
        values[_REF_FIELD.get(item.kind, "ref_id")] = item.ref_id
    payload = item.payload if isinstance(item.payload, dict) else {}
    if isinstance(payload.get("run_id"), str):
        values["run_id"] = payload["run_id"]
    _work_log.set(WorkLog(values))
    return values


def context_fields() -> dict[str, Any]:
    """The request and work context of the current task, and its trace when one is
    being recorded."""
    found: dict[str, Any] = {}
    for holder in (_request_log.get(), _work_log.get()):
        if holder is not None:
            found.update(holder.fields())
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        found["trace_id"] = format(span.trace_id, "032x")
        found["span_id"] = format(span.span_id, "016x")
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the context, then the
    fields a caller passed as `extra={"fields": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        data.update(context_fields())
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            data.update(extra)
        if record.exc_info:
            data["exception"] = redact("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs (found again and replaced on a second call).

    It writes to whatever `sys.stderr` is when a line is logged, not the stream of the
    moment it was made: a harness (or a daemon manager) may swap stderr, and a line must
    never go to a stream that was closed meanwhile."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """Ignored: the stream is always the current stderr."""


def configure_logging(level: str, fmt: Literal["json", "text"]) -> None:
    """Log to stderr at `level` in `fmt` (replacing what an earlier call installed)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    root.setLevel(numeric)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
