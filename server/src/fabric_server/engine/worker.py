"""The worker: claims work under a lease, runs handlers, heartbeats, shuts down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.models import WorkItem
from fabric_server.engine.queue import LeaseLost, WorkQueue

log = logging.getLogger("fabric_server.worker")


class Handler(Protocol):
    """Runs one kind of work item. It finishes the item through the queue itself, in the same
    transaction as its own state change, so completion happens exactly once."""

    async def run(self, item: WorkItem) -> None: ...

    async def give_up(self, item: WorkItem, error: str) -> None:
        """The item exhausted its attempts (e.g. its workers kept dying): fail it for good."""

    async def on_release(self, session: AsyncSession, item: WorkItem) -> None:
        """The worker stopped and handed the unfinished item back to the queue: undo what
        starting it recorded (same transaction as the hand-back)."""


class Worker:
    """Supervises a claim loop and a heartbeat loop over up to `concurrency` running items."""

    def __init__(
        self,
        queue: WorkQueue,
        handlers: Mapping[str, Handler],
        *,
        concurrency: int = 4,
        poll_interval: float = 1.0,
        heartbeat_interval: float = 10.0,
        shutdown_grace: float = 10.0,
    ) -> None:
        self.queue = queue
        self.handlers = dict(handlers)
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.shutdown_grace = shutdown_grace
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._running: dict[str, tuple[WorkItem, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        queue.on_enqueue(self.wake)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name=f"worker {self.id}")

    def request_stop(self) -> None:
        """Stop claiming now; running items get the grace period from now on (`stop` waits)."""
        self._stopping.set()
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming, let running items finish for a grace period, then hand them back."""
        self.request_stop()
        if self._supervisor is not None:
            await self._supervisor

    async def _supervise(self) -> None:
        log.info("worker %s started (%d slots)", self.id, self.concurrency)
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        try:
            await self._claim_loop()
        finally:
            await self._drain()
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            log.info("worker %s stopped", self.id)

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            # Clear before claiming: work enqueued while we claim sets it again.
            self._wake.clear()
            free = self.concurrency - len(self._running)
            claimed: list[WorkItem] = []
            if free > 0:
                try:
                    claimed = await self.queue.claim(self.id, list(self.handlers), free)
                except Exception:
                    log.exception("claiming work failed; retrying")
            for item in claimed:
                stale = self._running.get(item.id)
                if stale is not None:
                    # Our own lease expired (e.g. the loop stalled) and we reclaimed the item:
                    # the older run must not keep going beside the new one.
                    stale[1].cancel()
                task = asyncio.create_task(self._run(item), name=f"work {item.kind} {item.id}")
                self._running[item.id] = (item, task)
            if claimed and len(self._running) < self.concurrency:
                continue  # there may be more due work: claim again before sleeping
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _run(self, item: WorkItem) -> None:
        handler = self.handlers[item.kind]
        try:
            if item.attempts > item.max_attempts:
                await handler.give_up(item, "the work was interrupted too many times")
            else:
                await handler.run(item)
        except LeaseLost:
            log.warning("lease lost on %s %s; another worker owns it", item.kind, item.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handler for %s %s crashed", item.kind, item.id)
        finally:
            entry = self._running.get(item.id)
            if entry is not None and entry[1] is asyncio.current_task():
                del self._running[item.id]
            self._wake.set()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            renewing = dict(self._running)
            try:
                lost = await self.queue.heartbeat(self.id, list(renewing))
            except Exception:
                log.exception("heartbeat failed")
                continue
            for item_id in lost:
                entry = self._running.get(item_id)
                # Only the run the heartbeat was about: meanwhile that run may have ended
                # (a retry requeued the item) and the item been claimed again, by a new run.
                if entry is not None and entry is renewing[item_id]:
                    log.warning("lease on %s expired; abandoning it", item_id)
                    entry[1].cancel()

    async def _drain(self) -> None:
        if not self._running:
            return
        tasks = [task for _, task in self._running.values()]
        _, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace)
        for item, task in list(self._running.values()):
            if task in pending:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                try:
                    await self.queue.release(item, self.handlers[item.kind].on_release)
                except Exception:
                    # Not handed back: its lease expires and another worker reclaims it.
                    log.exception("handing %s %s back failed", item.kind, item.id)
                else:
                    log.info("handed %s %s back to the queue", item.kind, item.id)
