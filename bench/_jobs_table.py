"""Direct access to a Fabric database's `jobs` table for `list_scale.py`: fill it fast with
copies of one real job, find the id at a depth of the list, and ask the database for a plan.

PostgreSQL through asyncpg (COPY), SQLite through the standard library (`executemany` in large
transactions). Every copy keeps the model row's columns and gets a new time-ordered id (the
UUIDv7 layout of `fabric_server.db.types.new_id`, at a chosen millisecond) and timestamps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg

from fabric_server.settings import DEFAULT_ORGANIZATION_ID

CHUNK = 50_000
FAILED_EVERY = 1000
# Synthetic jobs start an hour before the model job, one millisecond apart.
HEAD_START_MS = 3_600_000


def id_at_ms(ms: int) -> str:
    """A UUIDv7 string for the millisecond `ms`, laid out as `new_id` does."""
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (rand >> 68) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


class JobsTable:
    """One database's jobs table; `open_table` picks the dialect from the URL."""

    dialect = ""

    def model_row(self, job_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def insert(self, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def id_at(self, offset: int) -> str:
        """The id of the job `offset` places down the newest-first list."""
        raise NotImplementedError

    def explain(self, sql: str) -> list[str]:
        raise NotImplementedError

    def when(self, moment: dt.datetime) -> Any:
        return moment

    def after_fill(self) -> None:
        pass

    def close(self) -> None:
        pass

    def fill(self, model: dict[str, Any], start: int, count: int) -> None:
        """Insert `count` copies of `model`, numbered from `start` (older numbers are older)."""
        columns = list(model)
        base = created_ms(model["created_at"]) - HEAD_START_MS
        for first in range(start, start + count, CHUNK):
            last = min(first + CHUNK, start + count)
            self.insert(columns, list(self._copies(model, columns, base, first, last)))
        self.after_fill()

    def _copies(
        self, model: dict[str, Any], columns: list[str], base: int, first: int, last: int
    ) -> Iterator[tuple[Any, ...]]:
        for index in range(first, last):
            ms = base + index
            moment = self.when(dt.datetime.fromtimestamp(ms / 1000, dt.UTC))
            failed = index % FAILED_EVERY == 0
            row = {
                **model,
                "id": id_at_ms(ms),
                "status": "failed" if failed else "completed",
                "output": None if failed else model["output"],
                "error": "synthetic failure" if failed else None,
                "idempotency_key": None,
                "request_hash": None,
                "created_at": moment,
                "updated_at": moment,
                "started_at": moment,
                "completed_at": moment,
            }
            yield tuple(row[column] for column in columns)


def created_ms(value: Any) -> int:
    if isinstance(value, str):  # SQLite keeps naive UTC text
        value = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


class PostgresJobsTable(JobsTable):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.loop.run_until_complete(asyncpg.connect(url))

    def _run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def model_row(self, job_id: str) -> dict[str, Any]:
        return dict(self._run(self.conn.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)))

    def insert(self, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        self._run(self.conn.copy_records_to_table("jobs", records=rows, columns=columns))

    def after_fill(self) -> None:
        # Fresh statistics now rather than whenever autovacuum gets to them.
        self._run(self.conn.execute("ANALYZE jobs"))

    def id_at(self, offset: int) -> str:
        sql = "SELECT id FROM jobs WHERE organization_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1"
        value: str = self._run(self.conn.fetchval(sql, DEFAULT_ORGANIZATION_ID, offset))
        return value

    def explain(self, sql: str) -> list[str]:
        rows = self._run(self.conn.fetch("EXPLAIN ANALYZE " + sql))
        lines = [row[0] for row in rows]
        scan = next((line.strip() for line in lines if "Scan" in line), "")
        timing = [line for line in lines if line.startswith("Execution Time")]
        return [lines[0], scan, *timing]

    def close(self) -> None:
        self._run(self.conn.close())
        self.loop.close()


class SqliteJobsTable(JobsTable):
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, timeout=60)
        self.conn.row_factory = sqlite3.Row

    def when(self, moment: dt.datetime) -> Any:
        return moment.replace(tzinfo=None).isoformat(sep=" ")  # as SQLAlchemy stores it

    def model_row(self, job_id: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return dict(row)

    def insert(self, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" for _ in columns)
        with self.conn:
            self.conn.executemany(f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({marks})", rows)

    def id_at(self, offset: int) -> str:
        sql = "SELECT id FROM jobs WHERE organization_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?"
        value: str = self.conn.execute(sql, (DEFAULT_ORGANIZATION_ID, offset)).fetchone()[0]
        return value

    def explain(self, sql: str) -> list[str]:
        rows = self.conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        return ["; ".join(row[3] for row in rows)]

    def close(self) -> None:
        self.conn.close()


def open_table(url: str) -> JobsTable:
    if url.startswith("sqlite:///"):
        return SqliteJobsTable(url.removeprefix("sqlite:///"))
    return PostgresJobsTable(url)
