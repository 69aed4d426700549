"""Version counters that make per-process caches exact.

Each kind of cached answer (who may do what, which sessions are live, an organization's
secrets, its budget, its webhooks) has a counter row in `cache_versions`. Every transaction
that changes a table feeding that answer increments the counter in the same transaction — it
is found automatically: a write session notes which tracked tables it flushed or bulk-changed,
and bumps their counters just before it commits. So every process (this one or another on the
same database) sees the change through the counter.

A cache entry remembers the counter it was loaded under, and is used only while the counter
read *after the current request began* still has that value. That read is shared: all the
callers that arrived before it started wait for the one read (single flight), so under load
one small query serves many requests, and no request ever acts on an answer older than the
last change committed before it arrived.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

from sqlalchemy import BigInteger, Connection, String, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from fabric_server.db.base import Base
from fabric_server.db.database import Database, FabricSession, after_commit

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")

ACCESS = "access"  # memberships, roles, grants, organizations, API keys, service identities
SESSIONS = "sessions"  # signed-in sessions being ended
SECRETS = "secrets"  # organization secrets (provider credentials)
BUDGETS = "budgets"  # monthly limits
WEBHOOKS = "webhooks"  # which organizations have active endpoints
NAMES = (ACCESS, SESSIONS, SECRETS, BUDGETS, WEBHOOKS)

# table name -> (counter, whether inserting a row changes cached answers)
_TRACKED: dict[str, tuple[str, bool]] = {}
_PENDING = "fabric_version_bumps"


class CacheVersion(Base):
    """One counter per kind of cached answer."""

    __tablename__ = "cache_versions"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


def track(table: str, counter: str, *, inserts: bool = True) -> None:
    """Changes to `table` bump `counter` (inserts too, unless `inserts` is False)."""
    _TRACKED[table] = (counter, inserts)


# What each cached answer is made of. A table added to a cached answer is listed here.
for _table in ("memberships", "permission_grants", "organizations", "api_keys", "teams"):
    track(_table, ACCESS)
track("team_members", ACCESS)
track("auth_sessions", SESSIONS, inserts=False)  # a new session changes no cached answer
track("org_secrets", SECRETS)
track("organization_budgets", BUDGETS)
track("webhooks", WEBHOOKS)


def pending_bumps(session: AsyncSession | Session) -> set[str]:
    """The counters this transaction will bump when it commits."""
    info = session.info
    found: set[str] = info.get(_PENDING, set())
    return found


def _note(session: Session, table: str, *, inserted: bool) -> None:
    tracked = _TRACKED.get(table)
    if tracked is None or (inserted and not tracked[1]):
        return
    session.info.setdefault(_PENDING, set()).add(tracked[0])


@event.listens_for(FabricSession, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    for obj in session.new:
        _note(session, _table_of(obj), inserted=True)
    for obj in (*session.dirty, *session.deleted):
        if session.is_modified(obj) or obj in session.deleted:
            _note(session, _table_of(obj), inserted=False)


@event.listens_for(FabricSession, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    if table is not None:
        _note(state.session, str(table.name), inserted=state.is_insert)


def _table_of(obj: object) -> str:
    table = getattr(type(obj), "__tablename__", None)
    return str(table) if table else ""


async def bump_pending(session: AsyncSession) -> set[str]:
    """Increment the counters this transaction touched (just before it commits); returns
    their names."""
    names: set[str] = session.info.pop(_PENDING, set())
    if names:
        await session.execute(
            update(CacheVersion)
            .where(CacheVersion.name.in_(sorted(names)))
            .values(version=CacheVersion.version + 1)
        )
    return names


def bump_in(conn: Connection, *names: str) -> None:
    """Increment counters inside a group-commit unit (Core)."""
    conn.execute(
        update(CacheVersion)
        .where(CacheVersion.name.in_(sorted(names)))
        .values(version=CacheVersion.version + 1)
    )


# The counters read for the current request or work item: None until read. Outside one
# (`_UNSCOPED`: a long-lived loop), every use reads them afresh.
_UNSCOPED: Mapping[str, int] = {}
_snapshot: contextvars.ContextVar[Mapping[str, int] | None] = contextvars.ContextVar(
    "fabric_cache_versions", default=_UNSCOPED
)


def begin_request() -> contextvars.Token[Mapping[str, int] | None]:
    """Start a request (or a work item): the counters are read once, at the first cached
    answer it needs, and reused for the rest of it."""
    return _snapshot.set(None)


def end_request(token: contextvars.Token[Mapping[str, int] | None]) -> None:
    _snapshot.reset(token)


class Versions:
    """Reads the counters, one shared read at a time (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._next: asyncio.Future[Mapping[str, int]] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        self.reads = 0  # for benchmarks and metrics

    def install(self) -> None:
        """Make the database's write sessions bump the counters of what they change."""
        self.db.before_commit.append(self._before_commit)

    def on_bump(self, counter: str, listener: Callable[[], None]) -> None:
        """Call `listener` after this process committed a change bumping `counter` (other
        processes' changes are seen through the counter itself)."""
        self._listeners.setdefault(counter, []).append(listener)

    async def _before_commit(self, session: AsyncSession) -> None:
        for name in await bump_pending(session):
            for listener in self._listeners.get(name, ()):
                after_commit(session, listener)

    async def current(self) -> Mapping[str, int]:
        """The counters as of a read that began after the current request (or work item)
        first asked; the same answer for the rest of it."""
        known = _snapshot.get()
        if known is not None and known is not _UNSCOPED:
            return known
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiting = self._next
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(
                self._read_loop(), name="cache versions", context=contextvars.Context()
            )
        found = await asyncio.shield(waiting)
        if known is None:
            _snapshot.set(found)
        return found

    async def run_read(self, read: Callable[[Connection], T]) -> T:
        """`Database.run_read`, also reading the counters in the same transaction when the
        current request has not read them yet (saving it a round trip)."""
        if _snapshot.get() is not None:
            return await self.db.run_read(read)
        found, value = await self.db.run_read(lambda conn: (_read_versions(conn), read(conn)))
        self.reads += 1
        _snapshot.set(found)
        return value

    @staticmethod
    def snapshot() -> Mapping[str, int] | None:
        """The counters the current request read, if it read them."""
        known = _snapshot.get()
        return None if known is None or known is _UNSCOPED else known

    @staticmethod
    def adopt(known: Mapping[str, int] | None) -> None:
        """Work that continues a request (an item it handed over) answers as of the same
        counters, unless it read its own already."""
        if known is not None and _snapshot.get() is None:
            _snapshot.set(known)

    async def _read_loop(self) -> None:
        while self._next is not None:
            waiting, self._next = self._next, None
            try:
                found = await self.db.run_read(_read_versions)
            except Exception as exc:
                waiting.set_exception(exc)
                waiting.exception()  # retrieved here: callers that left need not see it
                continue
            self.reads += 1
            waiting.set_result(found)


def _read_versions(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(CacheVersion.name, CacheVersion.version))
    return {name: int(version) for name, version in rows}


class VersionedCache(Generic[K, V]):
    """Answers of one kind, each kept with the counter values it was loaded under (an answer
    made of several kinds of data names each of their counters)."""

    def __init__(self, versions: Versions, *counters: str, max_entries: int = 10_000) -> None:
        self.versions = versions
        self.counters = counters
        self.max_entries = max_entries
        self._entries: OrderedDict[K, tuple[tuple[int, ...], V]] = OrderedDict()

    async def get(
        self, session: AsyncSession | None, key: K, load: Callable[[], Awaitable[V]]
    ) -> V:
        """The cached answer for `key`, or `load()`'s (then kept). A transaction that has
        itself changed what this cache holds always loads afresh, uncached."""
        if session is not None and pending_bumps(session) & set(self.counters):
            return await load()
        current = await self.versions.current()
        version = tuple(current.get(counter, 0) for counter in self.counters)
        entry = self._entries.get(key)
        if entry is not None and entry[0] == version:
            self._entries.move_to_end(key)
            return entry[1]
        value = await load()
        self._entries[key] = (version, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()


__all__ = [
    "ACCESS",
    "BUDGETS",
    "NAMES",
    "SECRETS",
    "SESSIONS",
    "WEBHOOKS",
    "CacheVersion",
    "VersionedCache",
    "Versions",
    "bump_in",
    "track",
]
