"""Event streams: iterators over the domain events of an SSE endpoint, reconnecting as needed.

`SSEDecoder` (in `_sse`) turns bytes into frames. `StreamState` decides, without doing I/O
either, what each frame and each lost connection means: which events to deliver, when the
stream is finished, and how long to wait before reconnecting with ``Last-Event-ID``.
`EventStream` and `AsyncEventStream` add the reading and the sleeping.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Generator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, cast

import httpx

from ._base import HTTPX_ERRORS, RetryPolicy, is_retryable_status, parse_retry_after
from ._base import wrap_httpx_error as _wrap
from ._errors import FabricAPIError, FabricConnectionError, FabricError
from ._sse import ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from .types import Event

JOB_TERMINAL_KINDS = frozenset({"job.completed", "job.failed"})
RUN_TERMINAL_KINDS = frozenset(
    {"workflow.run.completed", "workflow.run.failed", "workflow.run.cancelled"}
)
# Consecutive connection attempts that may fail (no event received) before a stream gives up.
DEFAULT_MAX_STREAM_FAILURES = 5


class StreamState:
    """What a stream of domain events has seen so far, and what to do next (no I/O).

    A stream ends once an event whose kind is in ``terminal_kinds`` was delivered. Any other
    end of a connection - a network error or a close by the server - leads to a reconnection
    that resumes after the last event id. Attempts that deliver no event count as failures;
    after ``max_failures`` consecutive ones the stream gives up.
    """

    def __init__(
        self, *, terminal_kinds: frozenset[str], max_failures: int, policy: RetryPolicy
    ) -> None:
        self.last_event_id: Optional[str] = None
        self.finished = False
        self._terminal_kinds = terminal_kinds
        self._max_failures = max_failures
        self._policy = policy
        self._failures = 0
        self._delivered = False
        self._server_retry: Optional[float] = None

    def new_decoder(self) -> SSEDecoder:
        """A decoder for a fresh connection, carrying the last event id over."""
        self._delivered = False
        return SSEDecoder(self.last_event_id or "")

    def handle(self, sse: ServerSentEvent, decoder: SSEDecoder) -> tuple[Any, Optional[float]]:
        """Digest one frame: ``(event to deliver or None, reconnect delay or None)``.

        A reconnect delay means the server ended this connection on purpose (``event:
        reconnect``) and the reader must reconnect after that many seconds.
        """
        self._delivered = True
        self._failures = 0
        self.last_event_id = sse.id
        if decoder.retry is not None:
            self._server_retry = min(decoder.retry / 1000, self._policy.retry_after_cap)
        if sse.event == "reconnect":
            return None, self._requested_delay(sse.data)
        if not sse.data:
            return None, None
        try:
            event = json.loads(sse.data)
        except ValueError as exc:
            snippet = sse.data[:200]
            raise FabricError(f"the server sent event data that is not JSON: {snippet!r}") from exc
        kinds = {sse.event}
        if isinstance(event, dict):
            if "kind" not in event and sse.event != "message":
                event["kind"] = sse.event
            if isinstance(event.get("kind"), str):
                kinds.add(event["kind"])
        if not self._terminal_kinds.isdisjoint(kinds):
            self.finished = True
        return event, None

    def _requested_delay(self, data: str) -> float:
        try:
            retry_ms = json.loads(data).get("retry_ms") if data else None
        except (ValueError, AttributeError):
            retry_ms = None
        if not isinstance(retry_ms, (int, float)) or isinstance(retry_ms, bool) or retry_ms < 0:
            return 0.0
        return float(min(retry_ms / 1000, self._policy.retry_after_cap))

    def connection_lost(self, last_event_id: str) -> Optional[float]:
        """The connection ended; the delay before reconnecting, or None to give up."""
        self.last_event_id = last_event_id or None
        if not self._delivered:
            self._failures += 1
            if self._failures > self._max_failures:
                return None
        delay = self._policy.backoff(max(self._failures - 1, 0))
        # The server's ``retry:`` hint is a floor: it knows when it expects to be back.
        return delay if self._server_retry is None else max(delay, self._server_retry)

    def connect_failed(self, error: FabricError) -> Optional[float]:
        """Opening a connection failed; the delay before trying again, or None to give up."""
        if isinstance(error, FabricAPIError):
            if not is_retryable_status(error.status_code):
                return None
            response = error.response
            retry_after = None if response is None else parse_retry_after(response.headers)
        elif isinstance(error, FabricConnectionError):
            retry_after = None
        else:
            return None
        self._failures += 1
        if self._failures > self._max_failures:
            return None
        return self._policy.wait(self._failures - 1, retry_after)


def _gave_up(error: Optional[Exception]) -> FabricError:
    if error is not None:
        return error if isinstance(error, FabricError) else _wrap(error)
    return FabricConnectionError("the event stream kept closing before delivering any event")


class EventStream:
    """Iterator over the domain events of one SSE endpoint, reconnecting as needed.

    Nothing is sent until the first event is requested. Use it in a ``for`` loop, or as a
    context manager to release the connection early; `close()` stops it at any time.
    """

    def __init__(
        self,
        open_response: Callable[[Optional[str]], httpx.Response],
        sleep: Callable[[float], None],
        state: StreamState,
    ) -> None:
        self._open_response = open_response
        self._sleep = sleep
        self._state = state
        self._response: Optional[httpx.Response] = None
        self._chunks: Optional[Iterator[bytes]] = None
        self._decoder = SSEDecoder()
        self._ready: deque[Event] = deque()
        self._delay = 0.0
        self._closed = False

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        try:
            while not self._ready:
                if self._closed or self._state.finished:
                    raise StopIteration
                if self._chunks is None:
                    self._connect()
                    continue
                try:
                    chunk = next(self._chunks)
                except StopIteration:
                    self._lost(None)
                except HTTPX_ERRORS as exc:
                    self._lost(exc)
                else:
                    self._receive(chunk)
            return self._ready.popleft()
        except Exception:  # the end, or an error: either way the connection is not needed
            self.close()
            raise

    def _connect(self) -> None:
        while True:
            if self._delay > 0:
                self._sleep(self._delay)
            self._delay = 0.0
            try:
                response = self._open_response(self._state.last_event_id)
            except FabricError as exc:
                delay = self._state.connect_failed(exc)
                if delay is None:
                    raise
                self._delay = delay
                continue
            self._response, self._chunks = response, response.iter_bytes()
            self._decoder = self._state.new_decoder()
            return

    def _receive(self, chunk: bytes) -> None:
        for sse in self._decoder.feed(chunk):
            event, reconnect_after = self._state.handle(sse, self._decoder)
            if event is not None:
                self._ready.append(event)
            if self._state.finished or reconnect_after is not None:
                self._release()
                self._delay = reconnect_after or 0.0
                return

    def _lost(self, error: Optional[Exception]) -> None:
        self._release()
        delay = self._state.connection_lost(self._decoder.last_event_id)
        if delay is None:
            raise _gave_up(error) from error
        self._delay = delay

    def _release(self) -> None:
        response, self._response, self._chunks = self._response, None, None
        if response is not None:
            # Closing an already broken connection can fail too; there is nothing left to save.
            with contextlib.suppress(*HTTPX_ERRORS):
                response.close()

    def close(self) -> None:
        """Stop the stream and release its connection; iteration then ends."""
        self._closed = True
        self._ready.clear()
        self._release()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class AsyncEventStream:
    """Async twin of `EventStream`: ``async for event in stream``.

    Nothing is sent until the first event is requested; ``await stream`` opens the connection
    at once instead (so a missing resource raises there). Also an async context manager.
    """

    def __init__(
        self,
        open_response: Callable[[Optional[str]], Awaitable[httpx.Response]],
        sleep: Callable[[float], Awaitable[None]],
        state: StreamState,
    ) -> None:
        self._open_response = open_response
        self._sleep = sleep
        self._state = state
        self._response: Optional[httpx.Response] = None
        self._chunks: Optional[AsyncGenerator[bytes, None]] = None
        self._decoder = SSEDecoder()
        self._ready: deque[Event] = deque()
        self._delay = 0.0
        self._closed = False

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        try:
            while not self._ready:
                if self._closed or self._state.finished:
                    raise StopAsyncIteration
                if self._chunks is None:
                    await self._connect()
                    continue
                try:
                    chunk = await self._chunks.__anext__()
                except StopAsyncIteration:
                    await self._lost(None)
                except HTTPX_ERRORS as exc:
                    await self._lost(exc)
                else:
                    await self._receive(chunk)
            return self._ready.popleft()
        except Exception:  # the end, or an error: either way the connection is not needed
            await self.close()
            raise

    def __await__(self) -> Generator[Any, None, AsyncEventStream]:
        return self._open_now().__await__()

    async def _open_now(self) -> AsyncEventStream:
        if self._chunks is None and not self._closed and not self._state.finished:
            await self._connect()
        return self

    async def _connect(self) -> None:
        while True:
            if self._delay > 0:
                await self._sleep(self._delay)
            self._delay = 0.0
            try:
                response = await self._open_response(self._state.last_event_id)
            except FabricError as exc:
                delay = self._state.connect_failed(exc)
                if delay is None:
                    raise
                self._delay = delay
                continue
            self._response = response
            self._chunks = cast("AsyncGenerator[bytes, None]", response.aiter_bytes())
            self._decoder = self._state.new_decoder()
            return

    async def _receive(self, chunk: bytes) -> None:
        for sse in self._decoder.feed(chunk):
            event, reconnect_after = self._state.handle(sse, self._decoder)
            if event is not None:
                self._ready.append(event)
            if self._state.finished or reconnect_after is not None:
                await self._release()
                self._delay = reconnect_after or 0.0
                return

    async def _lost(self, error: Optional[Exception]) -> None:
        await self._release()
        delay = self._state.connection_lost(self._decoder.last_event_id)
        if delay is None:
            raise _gave_up(error) from error
        self._delay = delay

    async def _release(self) -> None:
        response, self._response = self._response, None
        chunks, self._chunks = self._chunks, None
        # Closing an already broken connection can fail too; there is nothing left to save.
        with contextlib.suppress(*HTTPX_ERRORS):
            if chunks is not None:
                await chunks.aclose()
            if response is not None:
                await response.aclose()

    async def close(self) -> None:
        """Stop the stream and release its connection; iteration then ends."""
        self._closed = True
        self._ready.clear()
        await self._release()

    aclose = close

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()
