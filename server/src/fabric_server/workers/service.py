"""Code workers: registration, the list an operator sees, and the calls a worker makes about
its tasks (each authorized for the worker's organization with `worker.execute`)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.access.scope import caller_organization
from fabric_server.access.service import Access
from fabric_server.db.base import table_of
from fabric_server.db.database import Database
from fabric_server.db.types import new_id, utcnow
from fabric_server.db.writer import Tx, Writer
from fabric_server.errors import BadRequest, Conflict, Unprocessable
from fabric_server.events.outbox import EventRecorder
from fabric_server.paging import PageRequest, split_page
from fabric_server.workers.models import CodeWorker
from fabric_server.workers.tasks import HeldTask, Report, TaskBoard

EXECUTE = "worker.execute"
READ = "workflow.read"
WORKERS = table_of(CodeWorker)
# A worker not heard from for this many heartbeat intervals is stale, and announced offline.
STALE_AFTER_BEATS = 3
# How long a worker's row is kept in memory between its calls.
_KEEP_SECONDS = 2.0


class WorkerStopped(Conflict):
    code = "worker_stopped"


class WorkerService:
    def __init__(
        self,
        db: Database,
        writer: Writer,
        access: Access,
        events: EventRecorder,
        board: TaskBoard,
        *,
        heartbeat_seconds: float,
        lease_seconds: float,
    ) -> None:
        self.db = db
        self.writer = writer
        self.access = access
        self.events = events
        self.board = board
        self.heartbeat_seconds = heartbeat_seconds
        self.lease_seconds = lease_seconds
        self._rows: dict[str, tuple[CodeWorker, float]] = {}

    @property
    def stale_after(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.heartbeat_seconds * STALE_AFTER_BEATS)

    # -- the operator's view ---------------------------------------------------------------

    async def register(
        self,
        session: AsyncSession,
        principal: Principal,
        organization_id: str | None,
        *,
        name: str,
        operations: Sequence[tuple[str, int]],
        sdk_version: str | None,
        host: str | None,
    ) -> CodeWorker:
        org_id = await caller_organization(self.access, session, principal, organization_id)
        if org_id is None:
            raise BadRequest(
                "Say which organization the worker serves: organization_id, or an API key "
                "bound to one."
            )
        await self.access.authorize(session, principal, org_id, EXECUTE)
        names = [op for op, _ in operations]
        if len(set(names)) != len(names):
            raise Unprocessable(
                "Each operation may be listed once.",
                details={"operations": sorted({n for n in names if names.count(n) > 1})},
            )
        now = utcnow()
        worker = CodeWorker(
            id=new_id(),
            organization_id=org_id,
            name=name,
            operations=[{"name": op, "concurrency": n} for op, n in operations],
            sdk_version=sdk_version,
            host=host,
            created_by=principal.id,
            registered_at=now,
            last_seen_at=now,
        )
        session.add(worker)
        await session.flush()
        await self.events.record(
            session,
            "worker.online",
            organization_id=org_id,
            payload=_announced(worker, "registered"),
        )
        return worker

    async def list_page(
        self,
        session: AsyncSession,
        principal: Principal,
        page: PageRequest,
        *,
        organization_id: str | None,
        status: str | None,
    ) -> tuple[list[CodeWorker], str | None]:
        org_ids = await self.access.listable_org_ids(session, principal, organization_id, READ)
        query = select(CodeWorker).where(CodeWorker.organization_id.in_(org_ids))
        cutoff = utcnow() - self.stale_after
        if status == "offline":
            query = query.where(CodeWorker.stopped_at.is_not(None))
        elif status == "online":
            query = query.where(CodeWorker.stopped_at.is_(None), CodeWorker.last_seen_at >= cutoff)
        elif status == "stale":
            query = query.where(CodeWorker.stopped_at.is_(None), CodeWorker.last_seen_at < cutoff)
        if page.after_id:
            query = query.where(CodeWorker.id < page.after_id)
        rows = (
            await session.scalars(query.order_by(CodeWorker.id.desc()).limit(page.limit + 1))
        ).all()
        return split_page(rows, page.limit)

    async def get(self, session: AsyncSession, principal: Principal, worker_id: str) -> CodeWorker:
        worker, _ = await self.access.authorize_found(
            session,
            principal,
            await session.get(CodeWorker, worker_id),
            READ,
            missing=f"Worker {worker_id} was not found.",
            when_archived="allow",
        )
        return worker

    def status_of(self, worker: CodeWorker, now: dt.datetime | None = None) -> str:
        if worker.stopped_at is not None:
            return "offline"
        now = now or utcnow()
        return "online" if now - worker.last_seen_at <= self.stale_after else "stale"

    async def in_flight(self, workers: Sequence[CodeWorker]) -> dict[str, int]:
        return await self.board.in_flight([w.id for w in workers])

    # -- what a worker calls -----------------------------------------------------------------

    async def acting(
        self, principal: Principal, worker_id: str, *, stopped_ok: bool = False
    ) -> CodeWorker:
        """The worker, when the caller may act for it (404 for another organization's).

        A worker calls several times a second: its row is kept here for a moment (a
        deregistration elsewhere shows within `_KEEP_SECONDS`); authorization is decided on
        every call."""
        async with self.db.read() as session:
            worker, _ = await self.access.authorize_found(
                session,
                principal,
                await self._row(session, worker_id),
                EXECUTE,
                missing=f"Worker {worker_id} was not found.",
            )
        if worker.stopped_at is not None and not stopped_ok:
            raise WorkerStopped(
                f"Worker {worker_id} deregistered; register again to take tasks.",
            )
        return worker

    async def _row(self, session: AsyncSession, worker_id: str) -> CodeWorker | None:
        now = time.monotonic()
        kept = self._rows.get(worker_id)
        if kept is not None and now - kept[1] < _KEEP_SECONDS:
            return kept[0]
        row = await session.get(CodeWorker, worker_id)
        if row is not None:
            session.expunge(row)
            if len(self._rows) > 10_000:
                self._rows.clear()
            self._rows[worker_id] = (row, now)
        return row

    async def deregister(self, principal: Principal, worker_id: str) -> CodeWorker:
        worker = await self.acting(principal, worker_id, stopped_ok=True)
        self._rows.pop(worker_id, None)

        def unit(tx: Tx) -> None:
            now = utcnow()
            was_offline = tx.conn.execute(
                select(WORKERS.c.offline_at).where(WORKERS.c.id == worker.id)
            ).scalar()
            stopped = tx.conn.execute(
                update(WORKERS)
                .where(WORKERS.c.id == worker.id, WORKERS.c.stopped_at.is_(None))
                .values(stopped_at=now, offline_at=now)
                .returning(WORKERS.c.id)
            ).all()
            released = self.board.release_in(tx, worker.id)
            if stopped and was_offline is None:
                payload = {**_announced(worker, "deregistered"), "tasks_released": released}
                self.events.record_in(
                    tx, "worker.offline", organization_id=worker.organization_id, payload=payload
                )

        await self.writer.write(unit)
        async with self.db.read() as session:
            found = await session.get(CodeWorker, worker.id)
        assert found is not None
        return found

    async def poll(
        self,
        principal: Principal,
        worker_id: str,
        capacity: dict[str, int],
        wait_seconds: float,
        gone: Callable[[], Awaitable[bool]],
    ) -> list[dict[str, Any]]:
        worker = await self.acting(principal, worker_id)
        served = {op["name"] for op in worker.operations}
        unknown = sorted(set(capacity) - served)
        if unknown:
            raise Unprocessable(
                f"The worker did not register {', '.join(unknown)}; it serves "
                f"{', '.join(sorted(served))}.",
                details={"operations": unknown},
            )
        return await self.board.take(worker, capacity, wait_seconds, gone)

    async def heartbeat(
        self, principal: Principal, worker_id: str, held: Sequence[HeldTask]
    ) -> tuple[list[str], dt.datetime]:
        worker = await self.acting(principal, worker_id)
        await self.writer.write(lambda tx: self._seen(tx, worker))
        return await self.board.heartbeat(worker, held)

    async def report(
        self, principal: Principal, worker_id: str, task_id: str, attempt: int, report: Report
    ) -> None:
        worker = await self.acting(principal, worker_id)
        await self.board.report(worker, task_id, attempt, report)

    async def note(
        self,
        principal: Principal,
        worker_id: str,
        task_id: str,
        attempt: int,
        kind: str,
        payload: dict[str, Any],
    ) -> None:
        worker = await self.acting(principal, worker_id)
        await self.board.note(worker, task_id, attempt, kind, payload)

    def _seen(self, tx: Tx, worker: CodeWorker) -> None:
        """The worker was heard from: it is online again if it had been announced offline."""
        was_offline = tx.conn.execute(
            select(WORKERS.c.offline_at).where(WORKERS.c.id == worker.id)
        ).scalar()
        returned = tx.conn.execute(
            update(WORKERS)
            .where(WORKERS.c.id == worker.id, WORKERS.c.stopped_at.is_(None))
            .values(last_seen_at=utcnow(), offline_at=None)
            .returning(WORKERS.c.id)
        ).all()
        if returned and was_offline is not None:
            self.events.record_in(
                tx,
                "worker.online",
                organization_id=worker.organization_id,
                payload=_announced(worker, "heard from again"),
            )

    # -- housekeeping ----------------------------------------------------------------------

    async def sweep(self) -> int:
        """Announce offline the workers not heard from for too long; how many."""

        def unit(tx: Tx) -> int:
            now = utcnow()
            rows = tx.conn.execute(
                update(WORKERS)
                .where(
                    WORKERS.c.stopped_at.is_(None),
                    WORKERS.c.offline_at.is_(None),
                    WORKERS.c.last_seen_at < now - self.stale_after,
                )
                .values(offline_at=now)
                .returning(WORKERS.c.id, WORKERS.c.organization_id, WORKERS.c.name, WORKERS.c.host)
            ).all()
            for row in sorted(rows, key=lambda r: r.id):
                self.events.record_in(
                    tx,
                    "worker.offline",
                    organization_id=row.organization_id,
                    payload={
                        "worker_id": row.id,
                        "name": row.name,
                        "host": row.host,
                        "reason": "not heard from",
                    },
                )
            return len(rows)

        return await self.writer.write(unit)


def _announced(worker: CodeWorker, reason: str) -> dict[str, Any]:
    return {
        "worker_id": worker.id,
        "name": worker.name,
        "host": worker.host,
        "operations": [op["name"] for op in worker.operations],
        "reason": reason,
    }
