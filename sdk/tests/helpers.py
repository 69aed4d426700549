"""Test helpers: envelopes, SSE frames and a scripted mock server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable, Optional

import httpx

Handler = Callable[[httpx.Request], httpx.Response]


def ok(data: Any, status: int = 200) -> httpx.Response:
    """A success envelope."""
    return httpx.Response(status, json={"data": data, "meta": {"status": status}})


def fail(
    status: int,
    code: Optional[str] = None,
    message: Optional[str] = None,
    *,
    request_id: str = "req_123",
    details: Any = None,
    headers: Optional[dict[str, str]] = None,
) -> httpx.Response:
    """An error envelope."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    body = {"data": None, "meta": {"status": status, "request_id": request_id}, "error": error}
    return httpx.Response(status, json=body, headers=headers)


def sse_frame(kind: str, event_id: str, **fields: Any) -> bytes:
    """One SSE frame in the server's format, carrying a domain event."""
    data = json.dumps({"id": event_id, "kind": kind, **fields}, separators=(",", ":"))
    return f"event: {kind}\nid: {event_id}\ndata: {data}\n\n".encode()


class ChunkStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body delivered in the given chunks, optionally failing after them."""

    def __init__(self, chunks: list[bytes], error: Optional[Exception] = None) -> None:
        self.chunks = chunks
        self.error = error

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.error is not None:
            raise self.error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.error is not None:
            raise self.error


def sse_response(chunks: list[bytes], error: Optional[Exception] = None) -> httpx.Response:
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=ChunkStream(chunks, error)
    )


class Script:
    """A mock server answering from a list of responses (or exceptions), recording requests."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]
