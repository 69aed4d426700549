"""Inserts guarded by a unique constraint: the two shapes every domain needs.

Both run the insert in a savepoint, so a unique violation from a concurrent request undoes
only the insert and the caller's transaction goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.errors import DomainError

T = TypeVar("T")


async def write_unique(
    session: AsyncSession, write: Callable[[], Awaitable[T]], taken: Callable[[], DomainError]
) -> T:
    """Insert (or change) a row whose unique key must be free; when a concurrent request took
    it, raise `taken()` (a 409)."""
    try:
        async with session.begin_nested():
            return await write()
    except IntegrityError:
        raise taken() from None


async def create_or_find(
    session: AsyncSession,
    insert: Callable[[], Awaitable[T]],
    find: Callable[[], Awaitable[T | None]],
) -> tuple[T, bool]:
    """Create a row once: `(row, True)` when this call inserted it; `(row, False)` when a
    concurrent request inserted the same key first and `find` reads that row back."""
    try:
        async with session.begin_nested():
            return await insert(), True
    except IntegrityError:
        existing = await find()
        if existing is None:
            raise
        return existing, False
