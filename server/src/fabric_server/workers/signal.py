"""Wakes long polls when tasks may be ready: new work committed in this process, or in
another one (PostgreSQL's LISTEN, through the work queue's wakers)."""

from __future__ import annotations

import asyncio
import contextlib


class TaskSignal:
    """A generation of waiters: `waiter()` before looking at the queue, `notify()` wakes every
    waiter of the generation (so a wake-up between the look and the wait is never lost)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def waiter(self) -> asyncio.Event:
        return self._event

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()


async def wait_until(event: asyncio.Event, seconds: float) -> None:
    """Wait for `event`, at most `seconds`."""
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
