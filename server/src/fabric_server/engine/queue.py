"""The work queue: the one owner of queue SQL (enqueue, claim, finish, retry, heartbeat).

Work items are claimed under a lease. A worker that dies (even `kill -9`) stops renewing its
lease; once the lease expires any worker may claim the item again, so no work is lost.
Completion is guarded by the lease: a worker that lost its lease cannot finish the item, which
keeps a reclaimed item from completing twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    CursorResult,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.base import table_of
from fabric_server.db.database import PROCESS_TOKEN, Database, after_commit, after_rollback
from fabric_server.db.types import new_id, utcnow
from fabric_server.db.writer import Tx, Writer
from fabric_server.engine.lanes import Candidate
from fabric_server.engine.models import WorkItem
from fabric_server.engine.status import OPEN_WORK_STATUSES, WORK_TRANSITIONS, WorkStatus
from fabric_server.observability.tracing import with_trace_context

Clock = Callable[[], dt.datetime]
WORK_CHANNEL = "fabric_work"


class LeaseLost(Exception):
    """The worker no longer holds the lease: another worker owns the item now."""


@dataclass(frozen=True)
class Lease:
    """A place reserved in a worker of this process for an item about to be created: the
    item is written already leased to it, and handed over in memory once committed."""

    owner: str
    hand_over: Callable[[WorkItem], None]
    cancel: Callable[[], None]


class LeasePool:
    """Places in this process's worker reserved (on the event loop) before a group-commit
    unit is queued, for the items the unit may create. A unit may run more than once (its
    batch failed), so a lease counts as used only once its item was handed over; `settle`,
    once the write is over, gives back every other."""

    def __init__(self, leases: Sequence[Lease | None]) -> None:
        self._free = [lease for lease in leases if lease is not None]
        self._taken: list[Lease] = []
        self._used: set[int] = set()

    def take(self) -> Lease | None:
        if not self._free:
            return None
        lease = self._free.pop()
        self._taken.append(lease)
        index = len(self._taken) - 1

        def hand_over(item: WorkItem) -> None:
            self._used.add(index)
            lease.hand_over(item)

        return Lease(lease.owner, hand_over, lease.cancel)

    def settle(self) -> None:
        for index, lease in enumerate(self._taken):
            if index not in self._used:
                lease.cancel()
        for lease in self._free:
            lease.cancel()
        self._taken, self._free = [], []


class LocalWorker(Protocol):
    def reserve(
        self, kind: str, organization_id: str | None = None, *, replacing: bool = False
    ) -> Lease | None:
        """A lease for an item of `kind` of that organization, if this worker takes such
        items and has room for it."""


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 1.0
    max_seconds: float = 300.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter for the given (1-based) attempt."""
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** max(0, attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


class WorkQueue:
    def __init__(
        self,
        db: Database,
        *,
        lease_seconds: float = 30.0,
        retry: RetryPolicy | None = None,
        clock: Clock = utcnow,
        writer: Writer | None = None,
    ) -> None:
        self.db = db
        self.writer = writer
        self.lease_seconds = lease_seconds
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self._wakers: list[Callable[[], None]] = []
        # (kind prefix, callback): woken only for items of such kinds (and from elsewhere).
        self._kind_wakers: list[tuple[str, Callable[[], None]]] = []
        self._local: LocalWorker | None = None

    def attach_local(self, worker: LocalWorker | None) -> None:
        """Hand new work to `worker` (this process's) in memory instead of through claims."""
        self._local = worker

    def reserve(
        self, kind: str, count: int, organization_id: str | None = None, *, replacing: bool = False
    ) -> LeasePool:
        """Up to `count` places in this process's worker for items of `kind` a unit may
        create (on the event loop, before the unit is queued; `settle` the pool after).
        `replacing`: the unit finishes an item of the same organization, whose place the
        first of them may take."""
        return LeasePool(
            [
                self.lease_locally(kind, organization_id, replacing=replacing and n == 0)
                for n in range(count)
            ]
        )

    def lease_locally(
        self, kind: str, organization_id: str | None = None, *, replacing: bool = False
    ) -> Lease | None:
        """A lease in this process's worker for an item of `kind` about to be created (None:
        no local worker takes it now; the item is queued for any worker to claim). Cancel
        it if the item is not created after all."""
        if self._local is None:
            return None
        return self._local.reserve(kind, organization_id, replacing=replacing)

    def insert_in(
        self,
        tx: Tx,
        kind: str,
        *,
        ref_id: str | None = None,
        organization_id: str | None = None,
        payload: dict[str, Any] | None = None,
        priority: int = 0,
        max_attempts: int = 3,
        delay_seconds: float = 0.0,
        lease: Lease | None = None,
    ) -> WorkItem:
        """Create a work item in a group-commit unit: leased to a local worker (handed over
        after commit, no claim needed) when `lease` is given, else queued for any worker,
        due after `delay_seconds`."""
        (item,) = self.insert_many_in(
            tx,
            kind,
            [(ref_id, payload or {}, lease)],
            organization_id=organization_id,
            priority=priority,
            max_attempts=max_attempts,
            delay_seconds=delay_seconds,
        )
        return item

    def insert_many_in(
        self,
        tx: Tx,
        kind: str,
        refs: Sequence[tuple[str | None, dict[str, Any], Lease | None]],
        *,
        organization_id: str | None,
        priority: int,
        max_attempts: int,
        delay_seconds: float = 0.0,
    ) -> list[WorkItem]:
        """`insert_in` for several items of one kind, in one statement: `refs` gives each
        item's reference, payload and lease (None: queued)."""
        now = self.clock()
        due = now + dt.timedelta(seconds=delay_seconds)
        expires = now + dt.timedelta(seconds=self.lease_seconds)
        rows = []
        for ref_id, payload, lease in refs:
            leased = lease is not None and not delay_seconds
            rows.append(
                {
                    "id": new_id(),
                    "kind": kind,
                    "ref_id": ref_id,
                    "organization_id": organization_id,
                    "payload": with_trace_context(payload),
                    "priority": priority,
                    "status": WorkStatus.RUNNING if leased else WorkStatus.QUEUED,
                    "available_at": due,
                    "attempts": 1 if leased else 0,
                    "max_attempts": max_attempts,
                    "lease_owner": lease.owner if leased and lease else None,
                    "lease_expires_at": expires if leased else None,
                    "last_error": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        tx.conn.execute(_INSERT_ITEM, rows)
        items = [WorkItem(**row) for row in rows]
        queued = False
        for (_, _, lease), item in zip(refs, items, strict=True):
            if lease is not None and item.status == WorkStatus.RUNNING:
                tx.after_commit(functools.partial(lease.hand_over, item))
            else:
                queued = True  # (a lease not used here is given back by its pool)
        if queued:
            # Kinds with wakers of their own (code workers' tasks) are not this process's
            # workers' business: waking them would only cost an empty look at the queue.
            own = [wake for prefix, wake in self._kind_wakers if kind.startswith(prefix)]
            for wake in own or [self._wake_all]:
                tx.after_commit(wake)
            if not tx.is_sqlite:
                tx.once(WORK_CHANNEL, _notify_work)
        return items

    def announce_in(self, tx: Tx) -> None:
        """Wake workers (here after commit, elsewhere through PostgreSQL) for items the unit
        made runnable by other means than `insert_in` (e.g. handed back)."""
        tx.after_commit(self.wake_workers)
        if not tx.is_sqlite:
            tx.once(WORK_CHANNEL, _notify_work)

    def cancel_in(self, tx: Tx, kind: str, ref_id: str) -> None:
        """`cancel_pending` in a group-commit unit."""
        tx.conn.execute(
            update(_ITEMS)
            .where(
                _ITEMS.c.kind == kind,
                _ITEMS.c.ref_id == ref_id,
                _ITEMS.c.status == WorkStatus.QUEUED,
            )
            .values(
                status=_moved((WorkStatus.QUEUED,), WorkStatus.CANCELLED), updated_at=self.clock()
            )
        )

    def has_queued_in(self, tx: Tx, kind: str, ref_id: str) -> bool:
        """Whether an item of `kind` for `ref_id` waits in the queue (not yet claimed)."""
        found = tx.conn.scalar(
            select(_ITEMS.c.id)
            .where(
                _ITEMS.c.kind == kind,
                _ITEMS.c.ref_id == ref_id,
                _ITEMS.c.status == WorkStatus.QUEUED,
            )
            .limit(1)
        )
        return found is not None

    def finish_in(self, tx: Tx, item: WorkItem, *, status: WorkStatus = WorkStatus.DONE) -> None:
        """Finish the item in a group-commit unit; raises LeaseLost if it is not ours."""
        params = {
            "b_id": item.id,
            "b_owner": item.lease_owner,
            "b_attempts": item.attempts,
            "b_status": _moved((WorkStatus.RUNNING,), status),
            "b_now": self.clock(),
        }
        if tx.conn.execute(_FINISH_ITEM, params).rowcount != 1:
            raise LeaseLost(f"work item {item.id} is no longer leased by {item.lease_owner}")

    def on_enqueue(self, wake: Callable[[], None]) -> None:
        """Register a callback run after a transaction that enqueued work commits."""
        self._wakers.append(wake)

    def on_enqueue_of(self, prefix: str, wake: Callable[[], None]) -> None:
        """Register a callback run after a unit that queued items whose kind starts with
        `prefix` commits (and whenever another process says it queued work)."""
        self._kind_wakers.append((prefix, wake))

    def wake_workers(self) -> None:
        """Wake this process's workers (e.g. when another process enqueued work)."""
        self._wake_all()
        for _, wake in self._kind_wakers:
            wake()

    def _wake_all(self) -> None:
        for wake in self._wakers:
            wake()

    async def enqueue(
        self,
        session: AsyncSession,
        kind: str,
        *,
        ref_id: str | None = None,
        organization_id: str | None = None,
        payload: dict[str, Any] | None = None,
        priority: int = 0,
        max_attempts: int = 3,
        delay_seconds: float = 0.0,
        local: bool = False,
    ) -> WorkItem:
        """Add a work item to the session's transaction. With `local` (and no delay), this
        process's worker takes it after commit without a claim when it has room."""
        now = self.clock()
        lease = self.lease_locally(kind, organization_id) if local and not delay_seconds else None
        item = WorkItem(
            kind=kind,
            ref_id=ref_id,
            organization_id=organization_id,
            payload=with_trace_context(payload or {}),
            priority=priority,
            max_attempts=max_attempts,
            available_at=now + dt.timedelta(seconds=delay_seconds),
        )
        if lease is not None:
            item.status = WorkStatus.RUNNING
            item.attempts = 1
            item.lease_owner = lease.owner
            item.lease_expires_at = now + dt.timedelta(seconds=self.lease_seconds)
            session.add(item)
            after_commit(session, functools.partial(lease.hand_over, item))
            after_rollback(session, lease.cancel)
            return item
        session.add(item)
        after_commit(session, self._wake_all)
        if not self.db.is_sqlite and not session.info.get("work_notified"):
            # Wakes workers in other processes at commit (LISTEN fabric_work).
            await session.execute(
                text("SELECT pg_notify(:c, :p)"), {"c": WORK_CHANNEL, "p": PROCESS_TOKEN}
            )
            session.info["work_notified"] = True
        return item

    async def claim(self, owner: str, kinds: Sequence[str], limit: int) -> list[WorkItem]:
        """Lease up to `limit` runnable items: queued and due, or running with an expired lease.

        On SQLite the candidates are found in a read transaction first, so a look at an empty
        queue never takes the write lock."""
        now = self.clock()
        runnable = or_(
            (WorkItem.status == WorkStatus.QUEUED) & (WorkItem.available_at <= now),
            (WorkItem.status == WorkStatus.RUNNING) & (WorkItem.lease_expires_at < now),
        )
        candidates = (
            select(WorkItem.id)
            .where(runnable, WorkItem.kind.in_(list(kinds)))
            .order_by(WorkItem.priority.desc(), WorkItem.available_at, WorkItem.id)
            .limit(limit)
        )
        if self.db.is_sqlite:
            found = await self.db.run_read(lambda conn: list(conn.scalars(candidates)))
            if not found:
                return []
            chosen: Any = WorkItem.id.in_(found) & runnable
        else:
            chosen = WorkItem.id.in_(candidates.with_for_update(skip_locked=True).scalar_subquery())
        stmt = (
            update(WorkItem)
            .where(chosen)
            .values(
                status=_moved((WorkStatus.QUEUED, WorkStatus.RUNNING), WorkStatus.RUNNING),
                lease_owner=owner,
                lease_expires_at=now + dt.timedelta(seconds=self.lease_seconds),
                attempts=WorkItem.attempts + 1,
                updated_at=now,
            )
            .returning(WorkItem)
            .execution_options(synchronize_session=False)
        )
        async with self.db.write() as session:
            items = list((await session.scalars(stmt)).all())
        items.sort(key=lambda i: (-i.priority, i.available_at, i.id))
        return items

    async def candidates(
        self, kinds: Sequence[str], *, per_org: int, limit: int
    ) -> list[Candidate]:
        """Runnable items of `kinds` (queued and due, or leased with the lease expired), at
        most `per_org` of each organization, in turns: every organization's most urgent item
        first (by priority, then age), then every organization's second, … A read: taking
        them is `lease`."""
        now = self.clock()
        runnable = or_(
            (_ITEMS.c.status == WorkStatus.QUEUED) & (_ITEMS.c.available_at <= now),
            (_ITEMS.c.status == WorkStatus.RUNNING) & (_ITEMS.c.lease_expires_at < now),
        )
        turn = (
            func.row_number()
            .over(
                partition_by=_ITEMS.c.organization_id,
                order_by=(_ITEMS.c.priority.desc(), _ITEMS.c.available_at, _ITEMS.c.id),
            )
            .label("turn")
        )
        ranked = (
            select(
                _ITEMS.c.id,
                _ITEMS.c.organization_id,
                _ITEMS.c.priority,
                _ITEMS.c.available_at,
                turn,
            )
            .where(runnable, _ITEMS.c.kind.in_(list(kinds)))
            .subquery()
        )
        query = (
            select(ranked.c.id, ranked.c.organization_id, ranked.c.turn)
            .where(ranked.c.turn <= per_org)
            .order_by(ranked.c.turn, ranked.c.priority.desc(), ranked.c.available_at, ranked.c.id)
            .limit(limit)
        )
        rows = await self.db.run_read(lambda conn: conn.execute(query).all())
        return [Candidate(row.id, row.organization_id, row.turn) for row in rows]

    async def lease(self, owner: str, ids: Sequence[str]) -> list[WorkItem]:
        """Take the items `ids` under a lease, those still runnable (another worker may have
        taken some meanwhile).

        On PostgreSQL rows another transaction holds are skipped, not waited for: they are
        being taken or finished elsewhere (and are looked at again on the next round if not).
        Waiting would let a lease and a group-commit batch that finishes items in another
        order deadlock."""
        if not ids:
            return []
        now = self.clock()
        runnable = or_(
            (WorkItem.status == WorkStatus.QUEUED) & (WorkItem.available_at <= now),
            (WorkItem.status == WorkStatus.RUNNING) & (WorkItem.lease_expires_at < now),
        )
        chosen: Any = WorkItem.id.in_(list(ids)) & runnable
        if not self.db.is_sqlite:
            free = (
                select(WorkItem.id)
                .where(chosen)
                .order_by(WorkItem.id)
                .with_for_update(skip_locked=True)
            )
            chosen = WorkItem.id.in_(free.scalar_subquery())
        stmt = (
            update(WorkItem)
            .where(chosen)
            .values(
                status=_moved((WorkStatus.QUEUED, WorkStatus.RUNNING), WorkStatus.RUNNING),
                lease_owner=owner,
                lease_expires_at=now + dt.timedelta(seconds=self.lease_seconds),
                attempts=WorkItem.attempts + 1,
                updated_at=now,
            )
            .returning(WorkItem)
            .execution_options(synchronize_session=False)
        )
        async with self.db.write() as session:
            items = list((await session.scalars(stmt)).all())
        order = {item_id: index for index, item_id in enumerate(ids)}
        items.sort(key=lambda item: order[item.id])
        return items

    async def heartbeat(self, owner: str, item_ids: Sequence[str]) -> set[str]:
        """Extend the leases this worker holds; returns the ids whose lease was lost."""
        if not item_ids:
            return set()
        expires = self.clock() + dt.timedelta(seconds=self.lease_seconds)
        # Rows in id order, like every other writer that touches several items, so two
        # transactions never wait on each other's rows in opposite orders.
        stmt = (
            update(_ITEMS)
            .where(
                _ITEMS.c.id.in_(sorted(item_ids)),
                _ITEMS.c.lease_owner == owner,
                _ITEMS.c.status == WorkStatus.RUNNING,
            )
            .values(lease_expires_at=expires)
            .returning(_ITEMS.c.id)
        )

        def extend(tx: Tx) -> set[str]:
            return set(tx.conn.execute(stmt).scalars().all())

        if self.writer is not None:
            kept = await self.writer.write(extend)
        else:
            async with self.db.write() as session:
                kept = set((await session.execute(stmt)).scalars().all())
        return set(item_ids) - kept

    async def complete(self, session: AsyncSession, item: WorkItem) -> None:
        """Mark the item done in the caller's transaction; raises LeaseLost if not ours."""
        await self._finish(session, item, status=WorkStatus.DONE, error=None)

    async def fail(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        """Give up on the item for good (in the caller's transaction)."""
        await self._finish(session, item, status=WorkStatus.FAILED, error=error)

    async def retry_later(self, session: AsyncSession, item: WorkItem, error: str) -> float:
        """Requeue the item after a backoff; returns the delay in seconds."""
        delay = self.retry.delay(item.attempts)
        await self._guarded(
            session,
            item,
            status=WorkStatus.QUEUED,
            last_error=error,
            lease_owner=None,
            lease_expires_at=None,
            available_at=self.clock() + dt.timedelta(seconds=delay),
        )
        after_commit(session, self._wake_all)
        return delay

    async def release(
        self,
        item: WorkItem,
        on_release: Callable[[AsyncSession, WorkItem], Awaitable[None]] | None = None,
    ) -> None:
        """Hand an unfinished item back at once (graceful shutdown); `on_release` records the
        hand-back in the item's own state, in the same transaction.

        The interrupted attempt is not counted: rolling restarts must not use up retries.
        """
        async with self.db.write() as session:
            try:
                await self._guarded(
                    session,
                    item,
                    attempts=WorkItem.attempts - 1,
                    status=WorkStatus.QUEUED,
                    lease_owner=None,
                    lease_expires_at=None,
                    available_at=self.clock(),
                )
            except LeaseLost:
                return
            if on_release is not None:
                await on_release(session, item)

    async def cancel_pending(self, session: AsyncSession, kind: str, ref_id: str) -> int:
        """Cancel queued items for a reference (running ones are left to their worker)."""
        stmt = (
            update(WorkItem)
            .where(
                WorkItem.kind == kind,
                WorkItem.ref_id == ref_id,
                WorkItem.status == WorkStatus.QUEUED,
            )
            .values(
                status=_moved((WorkStatus.QUEUED,), WorkStatus.CANCELLED), updated_at=self.clock()
            )
            .execution_options(synchronize_session=False)
        )
        result: CursorResult[Any] = await session.execute(stmt)  # type: ignore[assignment]
        return result.rowcount

    async def open_refs(self, session: AsyncSession, kind: str, ref_ids: Sequence[str]) -> set[str]:
        """The references among `ref_ids` that still have an unfinished item of `kind`
        (queued, or running under a lease — possibly an expired one, which will be reclaimed)."""
        if not ref_ids:
            return set()
        rows = await session.scalars(
            select(WorkItem.ref_id).where(
                WorkItem.kind == kind,
                WorkItem.ref_id.in_(list(ref_ids)),
                WorkItem.status.in_(OPEN_WORK_STATUSES),
            )
        )
        return {ref for ref in rows if ref is not None}

    async def _finish(
        self, session: AsyncSession, item: WorkItem, *, status: WorkStatus, error: str | None
    ) -> None:
        await self._guarded(
            session, item, status=status, last_error=error, lease_owner=None, lease_expires_at=None
        )

    async def _guarded(
        self, session: AsyncSession, item: WorkItem, *, status: WorkStatus, **values: Any
    ) -> None:
        """Move a leased (running) item to `status`, if this worker still holds its lease."""
        # `attempts` fences the lease: an owner that stalled past its lease and reclaimed its
        # own item must not finish the new run with the old run's handle.
        stmt = (
            update(WorkItem)
            .where(*_lease_held(item))
            .values(status=_moved((WorkStatus.RUNNING,), status), updated_at=self.clock(), **values)
            .execution_options(synchronize_session=False)
        )
        result: CursorResult[Any] = await session.execute(stmt)  # type: ignore[assignment]
        if result.rowcount != 1:
            raise LeaseLost(f"work item {item.id} is no longer leased by {item.lease_owner}")


_ITEMS = table_of(WorkItem)
# Built once, so SQLAlchemy compiles them once (hot path).
_INSERT_ITEM = insert(_ITEMS)
_FINISH_ITEM = (
    update(_ITEMS)
    .where(
        _ITEMS.c.id == bindparam("b_id"),
        _ITEMS.c.lease_owner == bindparam("b_owner"),
        _ITEMS.c.attempts == bindparam("b_attempts"),
        _ITEMS.c.status == WorkStatus.RUNNING,
    )
    .values(
        status=bindparam("b_status"),
        last_error=None,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("b_now"),
    )
)


def _lease_held(item: WorkItem) -> tuple[Any, ...]:
    # `attempts` fences the lease: an owner that stalled past its lease and reclaimed its own
    # item must not finish the new run with the old run's handle.
    return (
        WorkItem.id == item.id,
        WorkItem.lease_owner == item.lease_owner,
        WorkItem.attempts == item.attempts,
        WorkItem.status == WorkStatus.RUNNING,
    )


def _notify_work(conn: Connection) -> None:
    """Wake workers in other processes at commit (LISTEN fabric_work)."""
    conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": WORK_CHANNEL, "p": PROCESS_TOKEN})


def _moved(sources: tuple[WorkStatus, ...], target: WorkStatus) -> WorkStatus:
    """`target`, once the transition table allows reaching it from each of `sources` (the
    statuses the statement's WHERE clause accepts)."""
    for source in sources:
        WORK_TRANSITIONS.check(source, target)
    return target
