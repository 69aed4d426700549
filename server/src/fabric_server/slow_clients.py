"""uvicorn's HTTP protocols with deadlines for slow clients.

uvicorn closes a connection that stays idle between requests (`timeout_keep_alive`), but not
one that sends a request head a byte at a time, nor one that stops halfway through a body:
such connections would be held forever. These protocols add

* a head deadline: a request's line and headers must arrive within
  `FABRIC_HTTP_HEADER_TIMEOUT_SECONDS` of its first byte (of the connection, for the first
  request) — sending more bytes does not extend it;
* a body idle deadline: a body that has started must keep arriving, with no gap longer than
  `FABRIC_HTTP_BODY_IDLE_TIMEOUT_SECONDS`;
* a head size limit, `FABRIC_HTTP_MAX_HEADER_BYTES` (`431` beyond), for the httptools
  parser, which has none of its own (h11 refuses heads larger than the same limit).

A connection past a deadline is closed; a request it was sending sees a disconnect.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

Phase = Literal["head", "body", "other"]

_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\ncontent-length: 31\r\n"
    b"connection: close\r\n\r\nRequest header fields too large"
)


class Deadlines:
    """The deadline bookkeeping both protocols share."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        head_seconds: float,
        body_idle_seconds: float,
        max_head_bytes: int,
    ) -> None:
        self.loop = loop
        self.head_seconds = head_seconds
        self.body_idle_seconds = body_idle_seconds
        self.max_head_bytes = max_head_bytes
        self.head_bytes = 0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_phase: Phase = "other"
        self.transport: asyncio.Transport | None = None

    def received(self, phase: Phase, size: int) -> bool:
        """Bytes arrived and were parsed, leaving the request in `phase`; False when the
        head grew past its limit (the connection was answered 431 and closed)."""
        if phase == "head":
            self.head_bytes += size
            if self.head_bytes > self.max_head_bytes:
                self.refuse_head()
                return False
        else:
            self.head_bytes = 0
        self.watch(phase)
        return True

    def watch(self, phase: Phase) -> None:
        if phase == "head":
            if self.timer_phase != "head":  # a head's deadline is never extended
                self.arm("head", self.head_seconds)
        elif phase == "body":
            self.arm("body", self.body_idle_seconds)
        else:
            self.disarm()

    def arm(self, phase: Phase, seconds: float) -> None:
        self.disarm()
        self.timer = self.loop.call_later(seconds, self.expire)
        self.timer_phase = phase

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None
        self.timer_phase = "other"

    def expire(self) -> None:
        self.timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def refuse_head(self) -> None:
        self.disarm()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_HEAD_TOO_LARGE)
            self.transport.close()


class GuardedH11Protocol(H11Protocol):
    head_seconds = 10.0
    body_idle_seconds = 30.0
    max_head_bytes = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadlines = Deadlines(
            self.loop,
            head_seconds=self.head_seconds,
            body_idle_seconds=self.body_idle_seconds,
            max_head_bytes=self.max_head_bytes,
        )

    def _phase(self) -> Phase:
        state = self.conn.their_state
        if state is h11.IDLE:
            return "head"
        return "body" if state is h11.SEND_BODY else "other"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadlines.transport = transport
        self.deadlines.watch("head")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.deadlines.received(self._phase(), len(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self.deadlines.disarm()
        super().connection_lost(exc)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    head_seconds = 10.0
    body_idle_seconds = 30.0
    max_head_bytes = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phase: Phase = "head"
        self.deadlines = Deadlines(
            self.loop,
            head_seconds=self.head_seconds,
            body_idle_seconds=self.body_idle_seconds,
            max_head_bytes=self.max_head_bytes,
        )

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadlines.transport = transport
        self.deadlines.watch("head")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.deadlines.received(self.phase, len(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self.deadlines.disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.phase = "head"

    def on_headers_complete(self) -> None:
        self.phase = "body"
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.phase = "other"
        super().on_message_complete()


def protocol_class(
    *, head_seconds: float, body_idle_seconds: float, max_head_bytes: int, use_h11: bool = False
) -> type[asyncio.Protocol]:
    """The HTTP protocol `serve` runs (httptools, or h11), with these deadlines and head
    limit."""
    limits = {
        "head_seconds": head_seconds,
        "body_idle_seconds": body_idle_seconds,
        "max_head_bytes": max_head_bytes,
    }
    base: type[asyncio.Protocol] = GuardedH11Protocol if use_h11 else GuardedHttpToolsProtocol
    return type("FabricHttpProtocol", (base,), limits)
