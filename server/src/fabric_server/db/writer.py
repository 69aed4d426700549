"""Group commit: one writer per process commits the writes of concurrent callers in batches.

A caller hands the writer a *unit*: a plain function that issues SQLAlchemy Core statements
on the connection it is given (`Tx`) and returns a value. The writer runs every unit waiting
at that moment, one after the other, in one transaction, commits once, and only then answers
each caller with its unit's value and runs the callbacks the unit registered with
`Tx.after_commit`. While a batch commits, the next one gathers, so the busier the process,
the more units share a commit.

Units do all their reading and deciding before they are queued (authorization, validation,
credentials); the writer never waits on them, and a unit never awaits anything. A unit that
raises fails only its caller: the batch is rolled back and its units are committed again one
at a time, each in its own transaction, so the others still succeed (units must therefore be
repeatable: no side effects outside the database except through `after_commit`).

SQLite: the batch runs on a thread of its own over a plain `sqlite3` connection (one thread
hand-off per batch, not per statement), under the process's write lock and `BEGIN
IMMEDIATE`, like every other writer. PostgreSQL: the batch runs on a pooled asyncpg
connection through SQLAlchemy's `run_sync`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

from fabric_server.db.database import Database, inside_write_transaction
from fabric_server.observability.metrics import WRITER_BATCH
from fabric_server.observability.tracing import carry_trace

log = logging.getLogger("fabric_server.db")
T = TypeVar("T")
AfterCommit = Callable[[], None]


class Tx:
    """One unit's view of a batch transaction."""

    def __init__(self, conn: Connection, batch: _Batch) -> None:
        self.conn = conn
        self._batch = batch
        self._callbacks: list[AfterCommit] = []

    @property
    def is_sqlite(self) -> bool:
        return self.conn.dialect.name == "sqlite"

    def once(self, key: str, step: Callable[[Connection], None]) -> None:
        """Run `step` the first time any unit of this transaction asks for `key` (a lock
        every event writer needs, say, taken once per batch)."""
        if key not in self._batch.done:
            step(self.conn)
            self._batch.done.add(key)

    def after_commit(self, callback: AfterCommit) -> None:
        """Run `callback` on the event loop once the transaction committed (never after a
        rollback), in the context of the unit that asked (its trace, say)."""
        self._callbacks.append(functools.partial(contextvars.copy_context().run, callback))


@dataclass
class _Batch:
    done: set[str] = field(default_factory=set)


@dataclass
class _Pending(Generic[T]):
    unit: Callable[[Tx], T]
    future: asyncio.Future[T]


@dataclass
class _Outcome:
    value: Any = None
    error: BaseException | None = None
    callbacks: list[AfterCommit] = field(default_factory=list)


class BatchFailed(Exception):
    """A unit of the batch raised; the transaction was rolled back."""


class Writer:
    """The process's group-commit writer (see the module docstring)."""

    def __init__(self, db: Database, *, max_batch: int = 200) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: deque[_Pending[Any]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._thread: ThreadPoolExecutor | None = None
        # Counters for benchmarks and metrics.
        self.batches = 0
        self.units = 0

    async def write(self, unit: Callable[[Tx], T]) -> T:
        """Run `unit` in the next batch; return its value once the batch committed."""
        if self._closed:
            raise RuntimeError("the writer is closed")
        if inside_write_transaction():
            raise RuntimeError("a unit queued inside Database.write() would wait on its lock")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(carry_trace(unit), future))
        self._wake.set()
        if self._task is None or self._task.done():
            # A context of its own: the writer serves every caller, and carries none of their
            # context variables (the request being audited, an open write transaction).
            self._task = asyncio.create_task(
                self._run(), name="group-commit writer", context=contextvars.Context()
            )
        return await future

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None

    async def _run(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            WRITER_BATCH.observe(len(batch))
            try:
                outcomes = await self._commit([p.unit for p in batch])
            except BaseException as exc:  # the database is unreachable, or we are cancelled
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            self.batches += 1
            self.units += len(batch)
            for pending, outcome in zip(batch, outcomes, strict=True):
                if outcome.error is None:
                    for callback in outcome.callbacks:
                        try:
                            callback()
                        except Exception:
                            log.exception("an after-commit callback failed")
                if pending.future.done():  # the caller went away
                    continue
                if outcome.error is not None:
                    pending.future.set_exception(outcome.error)
                else:
                    pending.future.set_result(outcome.value)

    async def _commit(self, units: list[Callable[[Tx], Any]]) -> list[_Outcome]:
        try:
            return await self._transaction(units)
        except BatchFailed:
            pass
        # Something in the batch failed: commit each unit alone so only the culprit fails.
        outcomes = []
        for unit in units:
            try:
                outcomes.extend(await self._transaction([unit]))
            except BatchFailed as failed:
                cause = failed.__cause__ or failed
                outcomes.append(_Outcome(error=cause))
        return outcomes

    async def _transaction(self, units: list[Callable[[Tx], Any]]) -> list[_Outcome]:
        if self.db.is_sqlite:
            async with self.db.write_lock():
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._executor(), self._sqlite_batch, units)
        async with self.db.engine.connect() as conn:
            conn = await conn.execution_options(fabric_write=True)
            return await conn.run_sync(_apply, units)

    def _sqlite_batch(self, units: list[Callable[[Tx], Any]]) -> list[_Outcome]:
        with self.db.sync_engine().connect() as conn:
            return _apply(conn.execution_options(fabric_write=True), units)

    def _executor(self) -> ThreadPoolExecutor:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="fabric-writer")
        return self._thread


def _apply(conn: Connection, units: list[Callable[[Tx], Any]]) -> list[_Outcome]:
    """Run the units in one transaction on `conn` and commit (sync: runs on the writer's
    thread, or inside `run_sync`)."""
    batch = _Batch()
    outcomes = []
    with conn.begin() as transaction:
        try:
            for unit in units:
                tx = Tx(conn, batch)
                outcomes.append(_Outcome(unit(tx), None, tx._callbacks))
        except Exception as exc:
            transaction.rollback()
            raise BatchFailed() from exc
    return outcomes
