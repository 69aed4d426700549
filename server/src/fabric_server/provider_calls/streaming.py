"""`POST /v1/providers/execute/stream`: a provider's answer as Server-Sent Events.

Frames, in order (each `data` is one JSON object):

* `started` — `{"provider_id", "model", "tier"}`: who is answering.
* `delta` — `{"index", "text"}`: the next piece of text (text requests; a provider that
  cannot stream sends its whole text as one delta).
* `completed` — the same object `POST /v1/providers/execute` returns; the stream ends.
* `error` — the error envelope (`{"data": null, "error": {...}, "meta": {"status", …}}`) of a
  failure after the stream began; the stream ends.

Failures before the first frame (bad input, missing credentials, every provider refusing)
are ordinary JSON error responses with their HTTP status, because routing may still fall
back until text flows. Idle periods carry `: keep-alive` comments. Usage is recorded once
per stream: the full execution, or — when the stream fails or the client goes away after
text was sent — what was sent, with approximated tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fabric_server.access.principal import Principal
from fabric_server.errors import DomainError, Unprocessable
from fabric_server.provider_calls.use_case import ProviderCalls
from fabric_server.providers.base import ProviderInputError, ProviderRequest, TextDelta
from fabric_server.providers.registry import Execution, StreamEvent, StreamOpened
from fabric_server.request_context import RequestAudit, continue_in_this_task, current_request

log = logging.getLogger("fabric_server.providers")

KEEPALIVE = b": keep-alive\n\n"


@dataclass
class StreamCall:
    """One streamed execution: who asked, what, and what has been sent so far."""

    calls: ProviderCalls
    request: ProviderRequest
    organization_id: str
    principal: Principal
    request_id: str
    keepalive_seconds: float
    opened: StreamOpened | None = None
    sent: list[str] = field(default_factory=list)
    recorded: bool = False
    audit: RequestAudit | None = field(default_factory=current_request.get)

    async def record(self, execution: Execution) -> None:
        """The usage row, with the request's audit row, in one transaction."""
        if self.recorded:
            return
        self.recorded = True
        token = continue_in_this_task(self.audit)
        try:
            await self.calls.record(execution, self.organization_id, self.principal)
        finally:
            current_request.reset(token)

    async def record_partial(self) -> None:
        """Account for an interrupted stream that had already produced text."""
        if self.opened is None or self.recorded:
            return
        partial = self.calls.partial(self.request, self.opened, "".join(self.sent))
        try:
            await self.record(partial)
        except Exception:
            log.exception("could not record the usage of an interrupted stream")


def execution_data(execution: Execution) -> dict[str, Any]:
    """The response object of an execution (shared with `POST /v1/providers/execute`)."""
    result = execution.result
    return {
        "provider_id": result.provider_id,
        "model": result.model,
        "modality": execution.modality,
        "tier": execution.tier,
        "output": result.output,
        "usage": {
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "estimated_cost_usd": result.cost_usd,
        },
        "latency_ms": execution.latency_ms,
        "failed_attempts": list(execution.failed_attempts),
    }


async def first_event(events: AsyncIterator[StreamEvent]) -> StreamEvent:
    """The stream's first event; routing failures surface here as ordinary errors."""
    try:
        return await anext(events)
    except StopAsyncIteration:  # pragma: no cover - the registry always yields
        raise RuntimeError("the provider stream ended without an answer") from None


async def frames(
    call: StreamCall, first: StreamEvent, events: AsyncIterator[StreamEvent]
) -> AsyncIterator[bytes]:
    """The SSE body: `first`, then the rest of `events`, keep-alives while idle."""
    pending: asyncio.Future[StreamEvent] | None = None
    try:
        yield await _frame_of(call, first)
        while not call.recorded:
            if pending is None:
                pending = asyncio.ensure_future(_next(events))
            done, _ = await asyncio.wait({pending}, timeout=call.keepalive_seconds)
            if not done:
                yield KEEPALIVE
                continue
            event, pending = pending.result(), None
            yield await _frame_of(call, event)
    except StopAsyncIteration:
        return
    except DomainError as exc:
        yield _frame("error", _error_envelope(exc, call.request_id))
    except ProviderInputError as exc:
        yield _frame("error", _error_envelope(Unprocessable(str(exc)), call.request_id))
    except Exception:
        log.exception("provider stream failed")
        yield _frame("error", _internal_error(call.request_id))
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        with contextlib.suppress(BaseException):
            await events.aclose()  # type: ignore[attr-defined]
        if not call.recorded:
            await asyncio.shield(call.record_partial())


async def _next(events: AsyncIterator[StreamEvent]) -> StreamEvent:
    return await anext(events)


async def _frame_of(call: StreamCall, event: StreamEvent) -> bytes:
    if isinstance(event, StreamOpened):
        call.opened = event
        data = {"provider_id": event.provider_id, "model": event.model, "tier": event.tier}
        return _frame("started", data)
    if isinstance(event, TextDelta):
        call.sent.append(event.text)
        return _frame("delta", {"index": len(call.sent) - 1, "text": event.text})
    await call.record(event)
    return _frame("completed", execution_data(event))


def _frame(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _error_envelope(exc: DomainError, request_id: str) -> dict[str, Any]:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details is not None:
        error["details"] = exc.details
    return {
        "data": None,
        "error": error,
        "meta": {"status": exc.status_code, "request_id": request_id},
    }


def _internal_error(request_id: str) -> dict[str, Any]:
    return {
        "data": None,
        "error": {"code": "internal_error", "message": "The stream failed unexpectedly."},
        "meta": {"status": 500, "request_id": request_id},
    }
