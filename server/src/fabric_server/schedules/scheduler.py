"""The scheduler loop: runs in every process that runs workers; safe with any number of them.

Each pass fires the schedules that are due (each in its own transaction, see `firing`) and
starts the runs that waited for their predecessor (`queue` policy). Between passes it sleeps
until the earliest `next_run_at` or the poll interval, whichever comes first; it wakes early
when a schedule changes in this process, and — while runs are waiting their turn — whenever
an event is committed (a run that ends is an event).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time

from fabric_server.db.database import Database
from fabric_server.events.broadcaster import Broadcaster
from fabric_server.schedules import repository
from fabric_server.schedules.firing import ScheduleFirer

log = logging.getLogger("fabric_server.schedules")
# The shortest pause between two passes, so a burst of wake-ups costs one pass.
_MIN_PAUSE = 0.02
_MAX_BATCHES = 20


class Scheduler:
    def __init__(
        self,
        db: Database,
        firer: ScheduleFirer,
        *,
        poll_seconds: float = 5.0,
        batch_size: int = 100,
        broadcaster: Broadcaster | None = None,
    ) -> None:
        self.db = db
        self.firer = firer
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.broadcaster = broadcaster
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look at the schedules again now (one changed)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="scheduler")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def tick(self) -> int:
        """One pass: fire what is due, release waiting runs. Returns the runs started."""
        started = 0
        for _ in range(_MAX_BATCHES):
            async with self.db.read() as session:
                due = await repository.due_ids(session, self.firer.clock(), self.batch_size)
            for schedule_id in due:
                try:
                    started += await self.firer.fire_due(schedule_id)
                except Exception:
                    # Left due: the next pass retries (an occurrence already recorded by a
                    # racing scheduler is then seen and skipped).
                    log.exception("firing schedule %s failed", schedule_id)
            if len(due) < self.batch_size:
                break
        released = await self.firer.release_held()
        async with self.db.read() as session:
            waiting = bool(await repository.schedules_with_held_runs(session))
        self.firer.runs_waiting = waiting
        return started + released

    async def _loop(self) -> None:
        log.info("scheduler started (poll every %ss)", self.poll_seconds)
        while not self._stopping.is_set():
            self._wake.clear()
            # Taken before the pass, so a run ending during the pass still wakes the next one.
            events = self._watch()
            try:
                await self.tick()
                pause = await self._pause_length()
            except Exception:
                log.exception("scheduler pass failed; retrying")
                pause = self.poll_seconds
            deadline = time.monotonic() + max(pause, _MIN_PAUSE)
            while not self._stopping.is_set():
                woken_by = await self._sleep(deadline - time.monotonic(), events)
                if woken_by is not events or self.firer.runs_waiting:
                    break
                # Nothing waits for a run to end: this event is no reason to look again.
                events = self._watch()
        log.info("scheduler stopped")

    async def _pause_length(self) -> float:
        async with self.db.read() as session:
            earliest = await repository.earliest_next_run(session)
        if earliest is None:
            return self.poll_seconds
        until = (earliest - self.firer.clock()) / dt.timedelta(seconds=1)
        # Still due after this pass: another scheduler holds it, or it failed; poll.
        return self.poll_seconds if until <= 0 else min(self.poll_seconds, until)

    def _watch(self) -> asyncio.Event | None:
        return self.broadcaster.watch() if self.broadcaster is not None else None

    async def _sleep(self, seconds: float, events: asyncio.Event | None) -> asyncio.Event | None:
        """Wait up to `seconds`; returns the signal that ended the wait (None: time is up)."""
        signals = [self._wake, self._stopping, *([events] if events is not None else [])]
        tasks = {asyncio.ensure_future(signal.wait()): signal for signal in signals}
        try:
            done, _ = await asyncio.wait(
                tasks, timeout=max(seconds, 0.0), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return next((tasks[task] for task in done), None)
