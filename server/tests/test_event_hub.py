"""The per-process event hub: one tail read per batch, every event delivered, even when slow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from fabric_server.app import start
from fabric_server.events import hub as hub_module
from fabric_server.events.repository import EventFilter
from fabric_server.services import Services


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class ConnectedRequest:
    """Stands in for a client that stays connected (the streamer only asks that)."""

    async def is_disconnected(self) -> bool:
        return False


@pytest.fixture
async def ready(services: Services) -> AsyncIterator[Services]:
    await start(services)
    yield services
    await services.hub.close()
    await services.db.dispose()


async def record(services: Services, count: int, job_id: str = "j1") -> None:
    async with services.db.write() as session:
        for i in range(count):
            await services.events.record(
                session, f"test.{i}", organization_id="o", job_id=job_id, payload={"i": i}
            )


async def test_live_subscribers_get_matching_events_once(ready: Services) -> None:
    mine = await ready.hub.subscribe(EventFilter(job_id="j1"))
    other = await ready.hub.subscribe(EventFilter(job_id="j2"))
    await record(ready, 3, "j1")
    got = [await asyncio.wait_for(mine.queue.get(), 5) for _ in range(3)]
    assert [e.payload["i"] for e in got] == [0, 1, 2]
    assert other.queue.empty()


async def test_a_slow_stream_catches_up_from_the_log(
    ready: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "BUFFER_SIZE", 2)
    terminal = frozenset({"test.9"})
    frames = ready.streamer._frames(
        ConnectedRequest(),  # type: ignore[arg-type]
        EventFilter(job_id="j1"),
        0,
        terminal,
        None,
    )
    assert await anext(frames) == b": connected\n\n"
    # Ten events arrive while the reader is not reading: its 2-slot buffer overflows.
    await record(ready, 10)
    await eventually(lambda: any(s.overflowed for s in ready.hub._subscribers))
    received = [chunk async for chunk in frames]
    kinds = [c.decode().split("\n", 1)[0] for c in received]
    assert kinds == [f"event: test.{i}" for i in range(10)]
