"""Streamed provider answers over a mock transport: the request, deltas, the final execution,
errors before and during the stream, and a connection that breaks (never re-sent)."""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx
import pytest

from fabric_platform import (
    AsyncFabricClient,
    FabricClient,
    FabricConnectionError,
    FabricRateLimitError,
    FabricServerError,
)

from .helpers import Script, fail, sse_response

MakeClient = Callable[..., FabricClient]
MakeAsyncClient = Callable[..., AsyncFabricClient]
COMPLETED = {
    "provider_id": "echo",
    "model": "echo-1",
    "output": {"text": "Hello there"},
    "usage": {"input_tokens": 2, "output_tokens": 2, "estimated_cost_usd": 0.0},
}


def frame(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


STARTED = frame("started", {"provider_id": "echo", "model": "echo-1", "tier": "basic"})
DELTAS = [
    frame("delta", {"index": 0, "text": "Hello "}),
    frame("delta", {"index": 1, "text": "there"}),
]


def test_deltas_then_the_execution(make_client: MakeClient) -> None:
    # Frames split across chunks, a keep-alive comment in between.
    body = STARTED + DELTAS[0] + b": keep-alive\n\n" + DELTAS[1] + frame("completed", COMPLETED)
    script = Script(sse_response([body[:25], body[25:70], body[70:]]))
    client = make_client(script)

    with client.execute_provider_stream("text", {"prompt": "Hello there"}, tier="basic") as stream:
        deltas = [delta["text"] for delta in stream]

    assert deltas == ["Hello ", "there"]
    assert stream.text == "Hello there"
    assert stream.started == {"provider_id": "echo", "model": "echo-1", "tier": "basic"}
    assert stream.result == COMPLETED
    request = script.last
    assert (request.method, request.url.path) == ("POST", "/v1/providers/execute/stream")
    assert request.headers["Accept"] == "text/event-stream"
    assert json.loads(request.content) == {
        "modality": "text",
        "input": {"prompt": "Hello there"},
        "tier": "basic",
    }


def test_nothing_is_sent_until_iteration_and_final_reads_to_the_end(
    make_client: MakeClient,
) -> None:
    script = Script(sse_response([STARTED, *DELTAS, frame("completed", COMPLETED)]))
    client = make_client(script)

    stream = client.execute_provider_stream("text", {"prompt": "x"}, model="echo-1")
    assert script.requests == []

    assert stream.final() == COMPLETED
    assert stream.text == "Hello there"


def test_a_refusal_before_the_stream_raises_the_typed_error(make_client: MakeClient) -> None:
    script = Script(fail(429, "rate_limited", "slow down", headers={"Retry-After": "4"}))
    client = make_client(script)

    with pytest.raises(FabricRateLimitError) as raised:
        list(client.execute_provider_stream("text", {"prompt": "x"}, model="gpt-4o"))

    assert raised.value.retry_after == 4
    assert len(script.requests) == 1  # a billed call is never retried


def test_an_error_frame_raises_the_typed_error_after_the_deltas(make_client: MakeClient) -> None:
    error = {
        "data": None,
        "error": {"code": "upstream_error", "message": "The OpenAI API failed while streaming"},
        "meta": {"status": 502, "request_id": "req_9"},
    }
    script = Script(sse_response([STARTED, DELTAS[0], frame("error", error)]))
    client = make_client(script)
    stream = client.execute_provider_stream("text", {"prompt": "x"})

    received = []
    with pytest.raises(FabricServerError) as raised:
        for delta in stream:
            received.append(delta["text"])

    assert received == ["Hello "]
    assert (raised.value.code, raised.value.status_code, raised.value.request_id) == (
        "upstream_error",
        502,
        "req_9",
    )
    assert stream.result is None


def test_a_stream_that_ends_early_is_a_connection_error(make_client: MakeClient) -> None:
    script = Script(
        sse_response([STARTED, DELTAS[0]], error=httpx.RemoteProtocolError("peer closed"))
    )
    client = make_client(script)

    with pytest.raises(FabricConnectionError):
        list(client.execute_provider_stream("text", {"prompt": "x"}))

    script = Script(sse_response([STARTED, DELTAS[0]]))
    with pytest.raises(FabricConnectionError, match="before the answer completed"):
        list(make_client(script).execute_provider_stream("text", {"prompt": "x"}))
    assert len(script.requests) == 1


async def test_async_twin(make_async_client: MakeAsyncClient) -> None:
    script = Script(sse_response([STARTED, *DELTAS, frame("completed", COMPLETED)]))
    client = make_async_client(script)

    async with client.execute_provider_stream("text", {"prompt": "Hello there"}) as stream:
        deltas = [delta["text"] async for delta in stream]

    assert deltas == ["Hello ", "there"]
    assert stream.result == COMPLETED
    assert (script.last.method, script.last.url.path) == ("POST", "/v1/providers/execute/stream")


async def test_async_await_sends_at_once_and_raises_refusals(
    make_async_client: MakeAsyncClient,
) -> None:
    script = Script(fail(400, "provider_not_configured", "set the OPENAI_API_KEY secret"))
    client = make_async_client(script)

    stream = client.execute_provider_stream("text", {"prompt": "x"}, model="gpt-4o")
    assert script.requests == []
    with pytest.raises(Exception, match="OPENAI_API_KEY"):
        await stream

    script = Script(sse_response([STARTED, *DELTAS, frame("completed", COMPLETED)]))
    opened = await make_async_client(script).execute_provider_stream("text", {"prompt": "x"})
    assert len(script.requests) == 1
    assert await opened.final() == COMPLETED
