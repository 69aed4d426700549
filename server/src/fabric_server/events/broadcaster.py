"""Wakes event readers when new events are committed. The event log stays the truth."""

from __future__ import annotations

import asyncio
from typing import Protocol


class Broadcaster(Protocol):
    def notify(self) -> None:
        """Signal that new events were committed (called after commit)."""

    def watch(self) -> asyncio.Event:
        """A token to take *before* reading the log, so no notify in between is missed."""

    async def wait(self, token: asyncio.Event, timeout: float) -> bool:
        """Wait until notified since `token` was taken, or `timeout` elapses."""


class MemoryBroadcaster:
    """One-process broadcaster: every waiting reader wakes on each notify.

    Readers in other processes are not woken; they poll the log on a short interval, so a
    missed wake-up only delays delivery, it never loses an event.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def watch(self) -> asyncio.Event:
        return self._event

    async def wait(self, token: asyncio.Event, timeout: float) -> bool:
        try:
            await asyncio.wait_for(token.wait(), timeout)
        except TimeoutError:
            return False
        return True
