"""The worker: takes work under a lease, runs handlers fairly, heartbeats, shuts down
gracefully."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db import versions
from fabric_server.engine.lanes import COMPUTE, Allotment, Lane
from fabric_server.engine.models import WorkItem
from fabric_server.engine.queue import Lease, LeaseLost, WorkQueue

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
    """Supervises a claim loop and a heartbeat loop over its lanes (`engine.lanes`).

    Work created in this process is handed over without a claim: the item is written already
    leased to this worker (`reserve`), and arrives in memory once committed (`hand_over`).
    Held items start as their lane's rules allow: fairly across organizations, one kind of
    work never holding every slot. Claiming from the queue table is for work created
    elsewhere (another process, a retry, a reclaimed lease).
    """

    def __init__(
        self,
        queue: WorkQueue,
        handlers: Mapping[str, Handler],
        *,
        concurrency: int = 4,
        lanes: Sequence[Lane] = (),
        lane_of: Mapping[str, str] | None = None,
        poll_interval: float = 1.0,
        heartbeat_interval: float = 10.0,
        shutdown_grace: float = 10.0,
    ) -> None:
        self.queue = queue
        self.handlers = dict(handlers)
        # Without lanes: one lane of `concurrency` slots, no shares (tests, tools).
        lanes = list(lanes) or [Lane(COMPUTE, concurrency, share=1.0, reserve=0)]
        self.lanes: dict[str, Allotment[WorkItem]] = {lane.name: Allotment(lane) for lane in lanes}
        assigned = lane_of or {}
        self._lane_of = {
            kind: assigned[kind] if assigned.get(kind) in self.lanes else lanes[0].name
            for kind in self.handlers
        }
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.shutdown_grace = shutdown_grace
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._running: dict[str, tuple[WorkItem, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()  # the queue may hold new work
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._releases: set[asyncio.Task[None]] = set()
        # Lanes whose last claim left runnable items behind for lack of room.
        self._backlogged: set[str] = set()
        queue.on_enqueue(self.wake)

    @property
    def concurrency(self) -> int:
        return sum(allotment.lane.slots for allotment in self.lanes.values())

    def wake(self) -> None:
        self._wake.set()

    def reserve(
        self, kind: str, organization_id: str | None = None, *, replacing: bool = False
    ) -> Lease | None:
        """Room for an item of `kind` being created in this process, or None (it is queued
        for any worker to claim instead). `replacing`: it follows an item of the same
        organization that is about to finish, whose place it may take."""
        if self._stopping.is_set() or self._supervisor is None or kind not in self.handlers:
            return None
        allotment = self.lanes[self._lane_of[kind]]
        if not allotment.reserve(organization_id, replacing=replacing):
            return None
        return Lease(self.id, self._hand_over, lambda: allotment.unreserve(organization_id))

    def _hand_over(self, item: WorkItem) -> None:
        allotment = self.lanes[self._lane_of[item.kind]]
        if self._stopping.is_set():
            allotment.unreserve(item.organization_id)
            # Too late to run it here: give it back to the queue for any worker.
            task = asyncio.create_task(self._release(item))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)
            return
        allotment.arrive(item.organization_id, item)
        self._dispatch(allotment)

    def _dispatch(self, allotment: Allotment[WorkItem]) -> None:
        """Start every held item the lane lets run now."""
        while not self._stopping.is_set() and (item := allotment.next_to_run()) is not None:
            self._start(item)

    def _start(self, item: WorkItem) -> None:
        stale = self._running.get(item.id)
        if stale is not None:
            # Our own lease expired (e.g. the loop stalled) and we reclaimed the item: the
            # older run must not keep going beside the new one.
            stale[1].cancel()
        # A context of its own: an item handed over by a request carries none of its state.
        task = asyncio.create_task(
            self._run(item), name=f"work {item.kind} {item.id}", context=contextvars.Context()
        )
        self._running[item.id] = (item, task)

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
        slots = ", ".join(f"{name} {a.lane.slots}" for name, a in self.lanes.items())
        log.info("worker %s started (slots: %s)", self.id, slots)
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        try:
            await self._claim_loop()
        finally:
            await self._drain()
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            log.info("worker %s stopped", self.id)

    async def _claim_loop(self) -> None:
        # Claim only when the queue may hold work for us: at start, when woken (new work was
        # queued here or elsewhere, a retry was scheduled), after a full batch, once per poll
        # interval (work that became due), and — in a lane whose last look found more than
        # it had room for — when a quarter of the lane's room is free again. A slot freed
        # otherwise is no reason to look: an empty look costs a transaction.
        maybe_work = set(self.lanes)
        while not self._stopping.is_set():
            # Clear before claiming: work enqueued while we claim sets it again.
            self._wake.clear()
            self._slot_freed.clear()
            for name in list(maybe_work):
                try:
                    full = await self._claim(self.lanes[name])
                except Exception:
                    log.exception("claiming work failed; retrying")
                    full = False
                if not full:
                    maybe_work.discard(name)  # a full batch: more may be waiting
            if maybe_work:
                continue
            woken = await _first_set(self._wake, self._slot_freed, self.poll_interval)
            if woken is not self._slot_freed:
                maybe_work = set(self.lanes)
            else:
                maybe_work = {
                    name
                    for name in self._backlogged
                    if _room(self.lanes[name]) >= max(1, self.lanes[name].lane.capacity // 4)
                }

    async def _claim(self, allotment: Allotment[WorkItem]) -> bool:
        """Claim what the lane has room for, fairly; True when it took a full batch."""
        lane = allotment.lane
        room = _room(allotment)
        kinds = [kind for kind, name in self._lane_of.items() if name == lane.name]
        if room <= 0 or not kinds:
            return False
        # One more per organization than it may hold: seeing it tells that more waits.
        per_org, limit = lane.slots + 1, room * 2
        candidates = await self.queue.candidates(kinds, per_org=per_org, limit=limit)
        picked = allotment.pick(candidates)
        more = len(candidates) > len(picked) or len(candidates) == limit
        if more:
            self._backlogged.add(lane.name)  # more waits than there is room for
        else:
            self._backlogged.discard(lane.name)
        try:
            items = await self.queue.lease(self.id, [c.id for c in picked])
        except BaseException:
            for candidate in picked:
                allotment.unreserve(candidate.organization_id)
            raise
        taken = {item.id for item in items}
        for candidate in picked:
            if candidate.id not in taken:  # another worker was quicker
                allotment.unreserve(candidate.organization_id)
        for item in items:
            allotment.arrive(item.organization_id, item)
        self._dispatch(allotment)
        return bool(picked) and len(items) == len(picked) and more and _room(allotment) > 0

    async def _run(self, item: WorkItem) -> None:
        handler = self.handlers[item.kind]
        allotment = self.lanes[self._lane_of[item.kind]]
        versions.begin_request()  # this task's own context: cached answers as of now
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
                allotment.finished(item.organization_id)
            self._dispatch(allotment)
            self._slot_freed.set()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            renewing = dict(self._running)
            waiting = [item.id for a in self.lanes.values() for item in a.all_waiting()]
            try:
                lost = await self.queue.heartbeat(self.id, [*renewing, *waiting])
            except Exception:
                log.exception("heartbeat failed")
                continue
            if lost:
                self._forget_waiting(set(lost))
            for item_id in lost:
                entry = self._running.get(item_id)
                # Only the run the heartbeat was about: meanwhile that run may have ended
                # (a retry requeued the item) and the item been claimed again, by a new run.
                if entry is not None and entry is renewing.get(item_id):
                    log.warning("lease on %s expired; abandoning it", item_id)
                    entry[1].cancel()

    def _forget_waiting(self, lost: set[str]) -> None:
        """Waiting items whose lease was lost belong to another worker now."""

        def kept(item: WorkItem) -> bool:
            return item.id not in lost

        for allotment in self.lanes.values():
            allotment.drop(kept)

    async def _drain(self) -> None:
        for allotment in self.lanes.values():
            for item in allotment.take_waiting():  # never started: straight back
                await self._release(item)
        if self._releases:
            await asyncio.gather(*self._releases, return_exceptions=True)
        if not self._running:
            return
        tasks = [task for _, task in self._running.values()]
        _, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace)
        for item, task in list(self._running.values()):
            if task in pending:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await self._release(item)

    async def _release(self, item: WorkItem) -> None:
        try:
            await self.queue.release(item, self.handlers[item.kind].on_release)
        except Exception:
            # Not handed back: its lease expires and another worker reclaims it.
            log.exception("handing %s %s back failed", item.kind, item.id)
        else:
            log.info("handed %s %s back to the queue", item.kind, item.id)


def _room(allotment: Allotment[WorkItem]) -> int:
    return allotment.lane.capacity - allotment.held_total


async def _first_set(
    first: asyncio.Event, second: asyncio.Event, timeout: float
) -> asyncio.Event | None:
    """Wait until either event is set (returning it) or `timeout` passes (None)."""
    if first.is_set():
        return first
    if second.is_set():
        return second
    waiters = {
        asyncio.ensure_future(first.wait()): first,
        asyncio.ensure_future(second.wait()): second,
    }
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    if first.is_set():
        return first
    return second if done else None
