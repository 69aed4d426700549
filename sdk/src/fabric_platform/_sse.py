"""The SSE wire format: a WHATWG "event stream interpretation" decoder that does no I/O."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Optional

__all__ = ["SSEDecoder", "ServerSentEvent"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched SSE frame. ``id`` is the last event id in force when it was dispatched."""

    event: str = "message"
    data: str = ""
    id: Optional[str] = None


class SSEDecoder:
    """Incremental SSE parser (WHATWG "event stream interpretation"), free of I/O.

    Feed it bytes as they arrive, in chunks of any size; it returns the frames completed by
    each chunk. Lines may end in CRLF, LF or CR (even a CR at the end of one chunk followed by
    the LF at the start of the next). A frame without ``data`` lines is not dispatched, but its
    ``id`` still becomes `last_event_id`; ``retry`` sets `retry` (milliseconds).
    """

    def __init__(self, last_event_id: str = "") -> None:
        self.last_event_id = last_event_id
        self.retry: Optional[int] = None
        self._id_buffer = last_event_id
        self._event = ""
        self._data: list[str] = []
        self._partial_line = ""
        self._skip_lf = False
        self._started = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode ``chunk`` (UTF-8, possibly cut inside a character) and return new frames."""
        return self.feed_text(self._utf8.decode(chunk))

    def feed_text(self, text: str) -> list[ServerSentEvent]:
        """Like `feed`, for already decoded text."""
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text[1:] if text.startswith("\ufeff") else text
        if self._skip_lf:
            self._skip_lf = False
            text = text[1:] if text.startswith("\n") else text
        *lines, self._partial_line = _LINE_BREAK.split(self._partial_line + text)
        # A CR ending this chunk already ended its line; an LF opening the next belongs to it.
        self._skip_lf = text.endswith("\r")
        events = []
        for line in lines:
            event = self.decode_line(line)
            if event is not None:
                events.append(event)
        return events

    def decode_line(self, line: str) -> Optional[ServerSentEvent]:
        """Process one line (without its line break); return a frame if the line completed one."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):  # a comment, e.g. the ": ping" keep-alive
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self._id_buffer = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None  # unknown fields are ignored

    def _dispatch(self) -> Optional[ServerSentEvent]:
        self.last_event_id = self._id_buffer
        event_type, self._event = self._event, ""
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        return ServerSentEvent(event_type or "message", data, self.last_event_id or None)
