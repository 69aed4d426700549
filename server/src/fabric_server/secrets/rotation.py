"""Re-sealing stored values under the current master key (`fabric-server rotate-secrets`).

Every table holding sealed values describes itself as a `SealedTable`; `KeyRotation` counts
their rows per key id and re-seals, in bounded batches of one write transaction each, the
rows a previous key sealed. Rows under a key that is neither current nor previous cannot be
re-sealed: rotation refuses before changing anything. Plain values exist only in memory,
between opening and sealing one row; they are never printed or logged.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.database import Database
from fabric_server.secrets import repository
from fabric_server.secrets.crypto import SecretCipher, SecretUnreadable

KeyRole = Literal["current", "previous", "unknown"]
DEFAULT_BATCH_SIZE = 500
# How many rows under unknown keys a refusal names (the counts are always complete).
NAMED_ROWS = 20


@dataclass(frozen=True)
class Batch:
    """What one `reseal_batch` did: the last row id it looked at (None: no rows were left),
    how many rows it re-sealed, and the rows that did not open (named, never their values)."""

    last_id: str | None
    resealed: int
    unreadable: list[str] = field(default_factory=list)


class SealedTable(Protocol):
    """A table whose rows hold values sealed with the master key."""

    @property
    def label(self) -> str:
        """The rows in plain words, plural: "organization secrets"."""
        ...

    async def count_by_key(self, session: AsyncSession) -> dict[str, int]:
        """Rows per key id."""
        ...

    async def name_rows(
        self, session: AsyncSession, key_ids: Collection[str], limit: int
    ) -> list[str]:
        """Up to `limit` rows sealed with one of `key_ids`, each named by where it belongs
        (never by its value)."""
        ...

    async def reseal_batch(
        self,
        session: AsyncSession,
        cipher: SecretCipher,
        key_ids: Collection[str],
        after: str,
        limit: int,
    ) -> Batch:
        """Lock the next `limit` rows by id after `after` sealed with one of `key_ids`, and
        seal each one's value again with `cipher`'s current key."""
        ...


@dataclass(frozen=True)
class Census:
    """How many rows of each table each master key sealed."""

    current: str
    previous: frozenset[str]
    counts: dict[str, dict[str, int]]  # table label → key id → rows

    def role(self, key_id: str) -> KeyRole:
        if key_id == self.current:
            return "current"
        return "previous" if key_id in self.previous else "unknown"

    def key_ids(self) -> list[str]:
        """The current key, the previous ones, then every other key that sealed a row."""
        seen = {key_id for per_key in self.counts.values() for key_id in per_key}
        unknown = sorted(k for k in seen if self.role(k) == "unknown")
        return [self.current, *sorted(self.previous), *unknown]

    def rows(self, role: KeyRole, label: str | None = None) -> int:
        """Rows sealed with a key of `role` (of one table, or of all)."""
        return sum(
            count
            for table, per_key in self.counts.items()
            if label is None or table == label
            for key_id, count in per_key.items()
            if self.role(key_id) == role
        )

    @property
    def unknown_key_ids(self) -> list[str]:
        return [k for k in self.key_ids() if self.role(k) == "unknown"]


class RotationRefused(Exception):
    """Some rows are sealed with a key that is neither current nor previous; nothing was
    changed. `named` lists some of them by where they belong."""

    def __init__(self, census: Census, named: dict[str, list[str]]) -> None:
        super().__init__(f"{census.rows('unknown')} values are sealed with an unknown master key")
        self.census = census
        self.named = named


@dataclass
class RotationReport:
    before: Census
    resealed: dict[str, int]
    unreadable: dict[str, list[str]]


# Called after each batch with the table's label and the rows that batch re-sealed.
Progress = Callable[[str, int], None]


class KeyRotation:
    """Re-seals, under the current master key, every value of `tables` a previous key sealed."""

    def __init__(
        self,
        db: Database,
        cipher: SecretCipher,
        tables: Sequence[SealedTable],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.db = db
        self.cipher = cipher
        self.tables = tables
        self.batch_size = batch_size

    async def census(self) -> Census:
        async with self.db.read() as session:
            counts = {table.label: await table.count_by_key(session) for table in self.tables}
        return Census(self.cipher.key_id, self.cipher.previous_key_ids, counts)

    async def rotate(self, progress: Progress | None = None) -> RotationReport:
        """Re-seal every row a previous key sealed; `RotationRefused` (before any change) when
        rows are sealed with a key that is neither current nor previous.

        Each batch is its own transaction, so an interrupted rotation keeps what it did and a
        second run goes on from there; rows sealed with the current key are never touched.
        """
        census = await self.census()
        unknown = census.unknown_key_ids
        if unknown:
            async with self.db.read() as session:
                named = {
                    table.label: await table.name_rows(session, unknown, NAMED_ROWS)
                    for table in self.tables
                    if census.rows("unknown", table.label)
                }
            raise RotationRefused(census, named)
        report = RotationReport(census, {}, {})
        for table in self.tables:
            resealed, unreadable = await self._rotate_table(table, progress)
            report.resealed[table.label] = resealed
            if unreadable:
                report.unreadable[table.label] = unreadable
        return report

    async def _rotate_table(
        self, table: SealedTable, progress: Progress | None
    ) -> tuple[int, list[str]]:
        previous = self.cipher.previous_key_ids
        resealed, after = 0, ""
        unreadable: list[str] = []
        while previous:
            async with self.db.write() as session:
                batch = await table.reseal_batch(
                    session, self.cipher, previous, after, self.batch_size
                )
            if batch.last_id is None:
                break
            # Keyset pagination: rows that do not open stay behind and are not read again.
            after = batch.last_id
            resealed += batch.resealed
            unreadable.extend(batch.unreadable)
            if progress is not None:
                progress(table.label, batch.resealed)
        return resealed, unreadable


class OrgSecretTable:
    """Organization secrets as a `SealedTable`."""

    label = "organization secrets"

    async def count_by_key(self, session: AsyncSession) -> dict[str, int]:
        return await repository.count_by_key(session)

    async def name_rows(
        self, session: AsyncSession, key_ids: Collection[str], limit: int
    ) -> list[str]:
        rows = await repository.sealed_with(session, key_ids, limit)
        return [f"organization {org_id}, secret {name}" for org_id, name in rows]

    async def reseal_batch(
        self,
        session: AsyncSession,
        cipher: SecretCipher,
        key_ids: Collection[str],
        after: str,
        limit: int,
    ) -> Batch:
        rows = await repository.lock_sealed_with(session, key_ids, after, limit)
        resealed, unreadable = 0, []
        for row in rows:
            org_id, name = row.organization_id, row.name
            try:
                value = cipher.open(org_id, name, row.nonce, row.ciphertext, row.key_id)
            except SecretUnreadable:
                unreadable.append(f"organization {org_id}, secret {name}")
                continue
            nonce, sealed = cipher.seal(org_id, name, value)
            await repository.reseal(session, row.id, nonce, sealed, cipher.key_id)
            resealed += 1
        return Batch(rows[-1].id if rows else None, resealed, unreadable)
