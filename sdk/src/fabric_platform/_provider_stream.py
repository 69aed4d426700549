"""Streamed provider answers (``POST /v1/providers/execute/stream``) as iterators of deltas.

`ProviderStreamState` turns the server's frames into deltas, the start and the final
execution, and an ``error`` frame into the same typed exception a plain call raises; it does
no I/O. `ProviderStream` and `AsyncProviderStream` add reading. A provider call is billed,
so a broken stream is never re-sent: it raises `FabricConnectionError`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Generator, Iterator
from types import TracebackType
from typing import Any, Awaitable, Callable, Optional, cast

import httpx

from ._base import HTTPX_ERRORS, api_error_from_envelope
from ._base import wrap_httpx_error as _wrap
from ._errors import FabricConnectionError, FabricError
from ._sse import SSEDecoder
from .types import ProviderDelta, ProviderExecution, ProviderStreamStart


class ProviderStreamState:
    """What a provider stream has delivered so far (no I/O)."""

    def __init__(self) -> None:
        self.decoder = SSEDecoder()
        self.started: Optional[ProviderStreamStart] = None
        self.result: Optional[ProviderExecution] = None
        self.parts: list[str] = []

    def feed(self, chunk: bytes) -> list[ProviderDelta]:
        """The deltas in ``chunk``; raises the typed error of an ``error`` frame."""
        deltas: list[ProviderDelta] = []
        for sse in self.decoder.feed(chunk):
            try:
                data = json.loads(sse.data)
            except ValueError as exc:
                raise FabricConnectionError("the provider stream sent a malformed frame") from exc
            if not isinstance(data, dict):
                continue
            if sse.event == "started":
                self.started = cast(ProviderStreamStart, data)
            elif sse.event == "delta" and isinstance(data.get("text"), str):
                self.parts.append(data["text"])
                deltas.append(cast(ProviderDelta, data))
            elif sse.event == "completed":
                self.result = cast(ProviderExecution, data)
            elif sse.event == "error":
                meta = data.get("meta")
                status = meta.get("status") if isinstance(meta, dict) else None
                raise api_error_from_envelope(data, status if isinstance(status, int) else 502)
        return deltas

    def ended(self) -> None:
        """The connection closed: fine after ``completed``, an error before it."""
        if self.result is None:
            raise FabricConnectionError("the provider stream ended before the answer completed")


class _StreamBase:
    def __init__(self) -> None:
        self._state = ProviderStreamState()
        self._ready: list[ProviderDelta] = []
        self._closed = False

    @property
    def started(self) -> Optional[ProviderStreamStart]:
        """``{provider_id, model, tier}`` of the provider answering, once known."""
        return self._state.started

    @property
    def result(self) -> Optional[ProviderExecution]:
        """The whole execution (output, usage, cost) once the stream has completed."""
        return self._state.result

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._state.parts)


class ProviderStream(_StreamBase):
    """``for delta in stream`` yields ``{"index", "text"}`` as the model writes.

    Nothing is sent until iteration starts. Afterwards `result` holds the execution (with
    usage and cost); `final()` reads to the end and returns it. Also a context manager;
    `close()` stops early (what was produced so far is still billed and recorded).
    """

    def __init__(self, open_response: Callable[[], httpx.Response]) -> None:
        super().__init__()
        self._open_response = open_response
        self._response: Optional[httpx.Response] = None
        self._chunks: Optional[Iterator[bytes]] = None

    def __iter__(self) -> ProviderStream:
        return self

    def __next__(self) -> ProviderDelta:
        try:
            while not self._ready:
                if self._closed or self._state.result is not None:
                    raise StopIteration
                if self._chunks is None:
                    self._response = self._open_response()
                    self._chunks = self._response.iter_bytes()
                try:
                    chunk = next(self._chunks)
                except StopIteration:
                    self._state.ended()
                    raise
                except HTTPX_ERRORS as exc:
                    raise _wrap(exc) from exc
                self._ready.extend(self._state.feed(chunk))
            return self._ready.pop(0)
        except BaseException:
            self.close()
            raise

    def final(self) -> ProviderExecution:
        """Read the rest of the stream; the completed execution."""
        for _ in self:
            pass
        if self._state.result is None:
            raise FabricError("the provider stream was closed before it completed")
        return self._state.result

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._closed = True
        self._ready.clear()
        response, self._response, self._chunks = self._response, None, None
        if response is not None:
            with contextlib.suppress(*HTTPX_ERRORS):
                response.close()

    def __enter__(self) -> ProviderStream:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class AsyncProviderStream(_StreamBase):
    """Async twin of `ProviderStream`: ``async for delta in stream``; ``await stream`` sends
    the request at once (so a refused request raises there)."""

    def __init__(self, open_response: Callable[[], Awaitable[httpx.Response]]) -> None:
        super().__init__()
        self._open_response = open_response
        self._response: Optional[httpx.Response] = None
        self._chunks: Optional[AsyncIterator[bytes]] = None

    def __aiter__(self) -> AsyncProviderStream:
        return self

    async def __anext__(self) -> ProviderDelta:
        try:
            while not self._ready:
                if self._closed or self._state.result is not None:
                    raise StopAsyncIteration
                if self._chunks is None:
                    await self._open()
                    continue
                try:
                    chunk = await self._chunks.__anext__()
                except StopAsyncIteration:
                    self._state.ended()
                    raise
                except HTTPX_ERRORS as exc:
                    raise _wrap(exc) from exc
                self._ready.extend(self._state.feed(chunk))
            return self._ready.pop(0)
        except BaseException:
            await self.close()
            raise

    def __await__(self) -> Generator[Any, None, AsyncProviderStream]:
        return self._open_now().__await__()

    async def _open_now(self) -> AsyncProviderStream:
        if self._chunks is None and not self._closed:
            try:
                await self._open()
            except BaseException:
                await self.close()
                raise
        return self

    async def _open(self) -> None:
        self._response = await self._open_response()
        self._chunks = self._response.aiter_bytes()

    async def final(self) -> ProviderExecution:
        """Read the rest of the stream; the completed execution."""
        async for _ in self:
            pass
        if self._state.result is None:
            raise FabricError("the provider stream was closed before it completed")
        return self._state.result

    async def close(self) -> None:
        """Stop reading and release the connection."""
        self._closed = True
        self._ready.clear()
        response, self._response, self._chunks = self._response, None, None
        if response is not None:
            with contextlib.suppress(*HTTPX_ERRORS):
                await response.aclose()

    async def __aenter__(self) -> AsyncProviderStream:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()
