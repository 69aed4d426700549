"""Server-Sent Events over the event log: replay, then live, with keep-alives."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from fabric_server.db.database import Database
from fabric_server.events import repository
from fabric_server.events.hub import EventHub, LogEvent
from fabric_server.events.open_streams import OpenStream, OpenStreams
from fabric_server.events.repository import EventFilter

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def event_to_dict(event: LogEvent) -> dict[str, Any]:
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


def frame(event: LogEvent) -> bytes:
    data = json.dumps(event_to_dict(event), separators=(",", ":"))
    return f"event: {event.kind}\nid: {event.id}\ndata: {data}\n\n".encode()


RECONNECT_FRAME = b'event: reconnect\nretry: 0\ndata: {"retry_ms":0}\n\n'


class CountedStreamingResponse(StreamingResponse):
    """A stream that gives its place among the open streams back when it ends, however."""

    def __init__(self, *args: Any, counted: OpenStream, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counted = counted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.counted.release()


class EventStreamer:
    """Builds SSE responses; shared by the job, run and global streams."""

    def __init__(
        self,
        db: Database,
        hub: EventHub,
        *,
        keepalive_seconds: float,
        max_connection_seconds: float,
        streams: OpenStreams | None = None,
        recheck_seconds: float = 15.0,
    ) -> None:
        self.db = db
        self.hub = hub
        self.streams = streams or OpenStreams(per_principal=0, per_organization=0)
        self.recheck_seconds = recheck_seconds
        self.keepalive_seconds = keepalive_seconds
        self.max_connection_seconds = max_connection_seconds
        # Counts the access changes (sign-outs, removed members, disabled keys, changed roles
        # or grants) this process committed: an open stream re-checks its caller before the
        # next event it sends after one, instead of waiting for its periodic re-check.
        self.access_changes = 0

    def access_changed(self) -> None:
        self.access_changes += 1

    async def response(
        self,
        request: Request,
        where: EventFilter,
        *,
        principal_id: str,
        organization_ids: Collection[str],
        still_allowed: Callable[[], Awaitable[bool]] | None = None,
        terminal_kinds: Collection[str] = (),
        replay: bool = True,
    ) -> StreamingResponse:
        """Stream events matching `where`, resuming after `Last-Event-ID` when given.

        With `replay`, a client without `Last-Event-ID` first receives the whole history;
        without it, only events written after it connected. After a terminal kind the
        stream ends; a connection that reaches its lifetime ends with a `reconnect` frame.
        The stream counts against the open-stream caps of `principal_id` and of each of
        `organization_ids` while it is open (429 `rate_limited` beyond). Every
        `recheck_seconds` it asks `still_allowed`, and ends (with a `reconnect` frame, which
        the client's next attempt answers with its refusal) once that says no.
        """
        counted = self.streams.admit(principal_id, organization_ids)
        try:
            start = await self._start_seq(request, replay)
        except BaseException:
            counted.release()
            raise
        body = self._frames(request, where, start, frozenset(terminal_kinds), still_allowed)
        return CountedStreamingResponse(
            body, media_type="text/event-stream", headers=SSE_HEADERS, counted=counted
        )

    async def _start_seq(self, request: Request, replay: bool) -> int:
        last_id = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        async with self.db.read() as session:
            if last_id:
                seq = await repository.seq_of(session, last_id.strip())
                if seq is not None:
                    return seq
            return 0 if replay else await repository.latest_seq(session)

    async def _frames(
        self,
        request: Request,
        where: EventFilter,
        after: int,
        terminal: frozenset[str],
        still_allowed: Callable[[], Awaitable[bool]] | None,
    ) -> AsyncIterator[bytes]:
        subscription = await self.hub.subscribe(where)
        try:
            yield b": connected\n\n"
            opened = last_sent = checked = time.monotonic()
            seen_changes = self.access_changes
            catch_up = True
            while True:
                if catch_up or subscription.take_overflow():
                    catch_up = False
                    async for event in self._history(where, after):
                        if subscription.ended:
                            break
                        after = event.seq
                        yield frame(event)
                        if event.kind in terminal:
                            return
                    last_sent = time.monotonic()
                now = time.monotonic()
                if still_allowed is not None and now - checked >= self.recheck_seconds:
                    checked = now
                    if not await _checked(still_allowed):
                        yield RECONNECT_FRAME
                        return
                if subscription.ended or now - opened >= self.max_connection_seconds:
                    yield RECONNECT_FRAME
                    return
                wait = min(
                    self.keepalive_seconds - (now - last_sent),
                    self.max_connection_seconds - (now - opened),
                    self.recheck_seconds - (now - checked),
                )
                try:
                    live = await asyncio.wait_for(subscription.queue.get(), max(wait, 0.0))
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    if time.monotonic() - last_sent >= self.keepalive_seconds:
                        yield b": ping\n\n"
                        last_sent = time.monotonic()
                    continue
                if live is None:
                    continue  # ended: the loop sends the reconnect frame
                if live.seq <= after:
                    continue  # already sent during replay
                if still_allowed is not None and seen_changes != self.access_changes:
                    seen_changes, checked = self.access_changes, time.monotonic()
                    if not await _checked(still_allowed):
                        yield RECONNECT_FRAME
                        return
                after = live.seq
                yield frame(live)
                last_sent = time.monotonic()
                if live.kind in terminal:
                    return
        finally:
            self.hub.unsubscribe(subscription)

    async def _read_batch(self, where: EventFilter, after: int) -> list[LogEvent]:
        async with self.db.read() as session:
            rows = await repository.events_after(session, after, where)
            return [LogEvent.of(row) for row in rows]

    async def _history(self, where: EventFilter, after: int) -> AsyncIterator[LogEvent]:
        while True:
            # Shielded: a client that disconnects mid-read cancels this generator, and a
            # query cancelled halfway would strand its pooled connection.
            batch = await asyncio.shield(self._read_batch(where, after))
            for event in batch:
                after = event.seq
                yield event
            if len(batch) < 500:
                return


async def _checked(still_allowed: Callable[[], Awaitable[bool]]) -> bool:
    # Shielded like the history reads: a client that leaves mid-check cancels the stream,
    # and a query cancelled halfway would strand its pooled connection.
    return await asyncio.shield(still_allowed())
