"""Server-Sent Events over the event log: replay, then live, with keep-alives."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Collection
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from fabric_server.db.database import Database
from fabric_server.db.models import Event
from fabric_server.events import repository
from fabric_server.events.broadcaster import Broadcaster
from fabric_server.events.repository import EventFilter

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def event_to_dict(event: Event) -> dict[str, Any]:
    created = event.created_at.isoformat()
    return {
        "id": event.id,
        "kind": event.kind,
        "organization_id": event.organization_id,
        "job_id": event.job_id,
        "run_id": event.run_id,
        "node_key": event.node_key,
        "payload": event.payload,
        "created_at": created,
        "timestamp": created,
    }


def frame(event: Event) -> bytes:
    data = json.dumps(event_to_dict(event), separators=(",", ":"))
    return f"event: {event.kind}\nid: {event.id}\ndata: {data}\n\n".encode()


class EventStreamer:
    """Builds SSE responses; shared by the job, run and global streams."""

    def __init__(
        self,
        db: Database,
        broadcaster: Broadcaster,
        *,
        keepalive_seconds: float,
        poll_seconds: float,
        max_connection_seconds: float,
    ) -> None:
        self.db = db
        self.broadcaster = broadcaster
        self.keepalive_seconds = keepalive_seconds
        self.poll_seconds = poll_seconds
        self.max_connection_seconds = max_connection_seconds

    async def response(
        self,
        request: Request,
        where: EventFilter,
        *,
        terminal_kinds: Collection[str] = (),
        replay: bool = True,
    ) -> StreamingResponse:
        """Stream events matching `where`, resuming after `Last-Event-ID` when given.

        With `replay`, a client without `Last-Event-ID` first receives the whole history;
        without it, only events written after it connected. After a terminal kind the
        stream ends; a connection that reaches its lifetime ends with a `reconnect` frame.
        """
        start = await self._start_seq(request, replay)
        body = self._frames(request, where, start, frozenset(terminal_kinds))
        return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)

    async def _start_seq(self, request: Request, replay: bool) -> int:
        last_id = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        async with self.db.read() as session:
            if last_id:
                seq = await repository.seq_of(session, last_id.strip())
                if seq is not None:
                    return seq
            return 0 if replay else await repository.latest_seq(session)

    async def _frames(
        self, request: Request, where: EventFilter, after: int, terminal: frozenset[str]
    ) -> AsyncIterator[bytes]:
        opened = time.monotonic()
        last_sent = opened
        yield b": connected\n\n"
        while True:
            async with self.db.read() as session:
                events = await repository.events_after(session, after, where)
            for event in events:
                after = event.seq
                yield frame(event)
                last_sent = time.monotonic()
                if event.kind in terminal:
                    return
            if len(events) >= 500:
                continue  # more history waiting: keep replaying without pausing
            now = time.monotonic()
            if now - opened >= self.max_connection_seconds:
                retry = json.dumps({"retry_ms": 0})
                yield f"event: reconnect\nretry: 0\ndata: {retry}\n\n".encode()
                return
            if now - last_sent >= self.keepalive_seconds:
                yield b": ping\n\n"
                last_sent = now
            if await request.is_disconnected():
                return
            await self.broadcaster.wait(self.poll_seconds)
