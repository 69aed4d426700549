"""Waiting for something to happen, as told by the event hub (long waits on reads)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fabric_server.events.hub import EventHub
from fabric_server.events.repository import EventFilter


async def wait_for_event(
    hub: EventHub,
    where: EventFilter,
    happened: Callable[[], Awaitable[bool]],
    timeout: float,
    gone: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Wait until an event matching `where` is committed, unless `happened()` says it has
    already (checked once subscribed, so nothing committed in between is missed). False when
    `timeout` seconds passed or `gone` returned first (the caller went away)."""
    subscription = await hub.subscribe(where)
    try:
        if await happened():
            return True
        return await first_of(subscription.queue.get(), gone, timeout)
    finally:
        hub.unsubscribe(subscription)


async def first_of(
    event: Awaitable[Any], gone: Callable[[], Awaitable[None]] | None, timeout: float
) -> bool:
    """Wait for `event`; False when `gone` returned or the time ran out first."""
    tasks = {asyncio.ensure_future(event)}
    watcher = asyncio.ensure_future(gone()) if gone is not None else None
    if watcher is not None:
        tasks.add(watcher)
    try:
        done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return bool(done) and watcher not in done
