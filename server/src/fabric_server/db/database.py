"""Engine factory and transactions, with one explicit strategy per dialect."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

T = TypeVar("T")
AfterCommit = Callable[[], None]
# Names this process in its PostgreSQL NOTIFY payloads, so its own listener can ignore them.
PROCESS_TOKEN = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
BeforeCommit = Callable[[AsyncSession], Awaitable[None]]


class FabricSession(Session):
    """Remembers the objects each transaction inserted, changed or deleted (for the audit
    row's resource and organization)."""


@event.listens_for(FabricSession, "after_flush")
def _remember_inserts(session: Session, _context: Any) -> None:
    session.info.setdefault("flushed_new", []).extend(session.new)
    touched = session.info.setdefault("flushed_touched", [])
    touched.extend(session.dirty)
    touched.extend(session.deleted)


_WRITES = "fabric_write_transaction"
_in_write: contextvars.ContextVar[bool] = contextvars.ContextVar("fabric_in_write", default=False)


class Database:
    """Owns the engine; hands out read and write sessions that commit at the boundary.

    SQLite: WAL, `synchronous=NORMAL`, foreign keys on, a busy timeout, and `BEGIN IMMEDIATE`
    for write transactions so two writers never deadlock upgrading their locks.
    PostgreSQL: asyncpg with a connection pool; work is claimed with `FOR UPDATE SKIP LOCKED`.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=10)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _install_sqlite_strategy(self.engine)
        else:
            _ping_idle_connections(self.engine)
        self._read = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write = async_sessionmaker(
            self.engine.execution_options(fabric_write=True),
            expire_on_commit=False,
            sync_session_class=FabricSession,
        )
        self.before_commit: list[BeforeCommit] = []
        # SQLite allows one writer at a time. Queueing this process's writers here keeps them
        # off SQLite's busy handler (which sleeps in growing steps); other processes still
        # meet the busy timeout.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None
        self._sync_engine: Engine | None = None
        self._readers: ThreadPoolExecutor | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write_lock(self) -> AsyncIterator[None]:
        """Hold the process's SQLite write lock (every writer takes it; no-op on PostgreSQL)."""
        if _in_write.get():
            raise RuntimeError("nested write transactions deadlock on SQLite; pass the session")
        if self._write_lock is None:
            yield
            return
        async with self._write_lock:
            yield

    def sync_engine(self) -> Engine:
        """A synchronous engine on the same SQLite file, with the same pragmas and `BEGIN
        IMMEDIATE` for writes: for code that runs a whole transaction on one thread."""
        if not self.is_sqlite:
            raise RuntimeError("only SQLite has a synchronous engine")
        if self._sync_engine is None:
            url = make_url(self.url).set(drivername="sqlite")
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            _install_sqlite_strategy(engine)
            self._sync_engine = engine
        return self._sync_engine

    async def run_read(self, read: Callable[[Connection], T]) -> T:
        """Run `read` (SQLAlchemy Core, synchronous) in a read transaction. On SQLite the
        whole transaction runs on a reader thread: one hand-off instead of one per
        statement."""
        if self.is_sqlite:
            if self._readers is None:
                self._readers = ThreadPoolExecutor(2, thread_name_prefix="fabric-reader")
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._readers, self._read_on_thread, read)
        async with self.engine.connect() as conn:
            return await conn.run_sync(read)

    def _read_on_thread(self, read: Callable[[Connection], T]) -> T:
        with self.sync_engine().connect() as conn:
            return read(conn)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; rolled back at the end."""
        async with self._read() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed when the block exits cleanly, else rolled back.

        Callbacks registered with `after_commit` run only once the commit succeeded.
        """
        if _in_write.get():
            raise RuntimeError("nested write transactions deadlock on SQLite; pass the session")
        token = _in_write.set(True)
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(_in_write.reset, token)
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            session = await stack.enter_async_context(self._write())
            session.info[_WRITES] = True
            try:
                yield session
                for hook in self.before_commit:
                    await hook(session)
                await session.commit()
            except BaseException:
                await session.rollback()
                for callback in session.info.pop("after_rollback", []):
                    callback()
                raise
            for callback in session.info.pop("after_commit", []):
                callback()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()
            self._sync_engine = None


def inside_write_transaction() -> bool:
    """Whether the current task is inside `Database.write()` (another write would wait on
    the lock it holds, on SQLite)."""
    return _in_write.get()


def is_write_transaction(session: AsyncSession) -> bool:
    """Whether `session` comes from `Database.write()` (the request or task changes data)."""
    return bool(session.info.get(_WRITES))


def after_rollback(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` if the session's write transaction rolls back instead of committing
    (giving back what was reserved for it)."""
    session.info.setdefault("after_rollback", []).append(callback)


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` after the session's transaction commits (never on rollback)."""
    callbacks: list[AfterCommit] = session.info.setdefault("after_commit", [])
    if callback not in callbacks:
        callbacks.append(callback)


# A pooled PostgreSQL connection unused for longer than this is checked with a round trip
# before it is handed out (the server may have closed it meanwhile); busy connections are not.
IDLE_PING_SECONDS = 10.0


def _ping_idle_connections(engine: AsyncEngine) -> None:
    sync = engine.sync_engine

    @event.listens_for(sync, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["fabric_idle_since"] = time.monotonic()

    @event.listens_for(sync, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("fabric_idle_since")
        if idle_since is None or time.monotonic() - idle_since <= IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # The pool replaces the connection and retries the checkout.
            raise DisconnectionError(str(exc)) from exc


def _install_sqlite_strategy(engine: AsyncEngine | Engine) -> None:
    sync = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) emit BEGIN, so we can choose IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("fabric_write", False)
        # On the raw cursor: the statement needs no SQLAlchemy events or compilation.
        cursor = conn.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        cursor.close()
