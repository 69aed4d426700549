"""Values read at scrape time: the work queue (one query) and the database pool.

`gather` runs before the scrape is rendered; `StateCollector` then reports what it found.
Nothing here runs on the path of a request or a work item.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import Pool

from fabric_server.db.database import Database
from fabric_server.db.types import utcnow
from fabric_server.engine.repository import QueueRow, queue_rows
from fabric_server.observability.labels import LabelValues

log = logging.getLogger("fabric_server.observability")
_KINDS = LabelValues(100)
_STATUSES = ("queued", "running")


@dataclass(eq=False)
class StateCollector(Collector):
    """What `gather` read, as gauges."""

    queue: list[QueueRow] = field(default_factory=list)
    kinds: tuple[str, ...] = ()
    now: dt.datetime = field(default_factory=utcnow)
    pool: dict[str, int] = field(default_factory=dict)
    readable: bool = True

    def collect(self) -> Iterator[Metric]:
        if self.readable:
            yield from self._queue_gauges()
        yield from _pool_gauges(self.pool)

    def _queue_gauges(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "fabric_queue_depth",
            "Open work items by kind and status (queued, running).",
            labels=["kind", "status"],
        )
        age = GaugeMetricFamily(
            "fabric_queue_oldest_age_seconds",
            "How long the oldest runnable queued work item of each kind has waited (0: none).",
            labels=["kind"],
        )
        counts: dict[tuple[str, str], int] = {}
        oldest: dict[str, dt.datetime] = {}
        for row in self.queue:
            kind = _KINDS(row.kind)
            counts[(kind, row.status)] = counts.get((kind, row.status), 0) + row.count
            if row.oldest_runnable is not None:
                known = oldest.get(kind)
                oldest[kind] = min(known, row.oldest_runnable) if known else row.oldest_runnable
        kinds = sorted({*map(_KINDS, self.kinds), *(kind for kind, _ in counts)})
        for kind in kinds:
            for status in _STATUSES:
                depth.add_metric([kind, status], counts.get((kind, status), 0))
            since = oldest.get(kind)
            waited = (self.now - since).total_seconds() if since is not None else 0.0
            age.add_metric([kind], max(0.0, waited))
        yield depth
        yield age

    def describe(self) -> Iterable[Metric]:
        return []


async def gather(db: Database, kinds: Iterable[str]) -> StateCollector:
    """Read the queue (one grouped query) and the pool of `db`."""
    now = utcnow()
    try:
        async with db.read() as session:
            rows = await queue_rows(session, now)
    except (SQLAlchemyError, OSError) as exc:
        # The process metrics are still worth serving; the queue series go missing, which
        # an `absent()` alert notices.
        log.warning("reading the work queue for metrics failed: %s", exc)
        return StateCollector(pool=pool_use(db.engine.pool), readable=False)
    return StateCollector(queue=rows, kinds=tuple(kinds), now=now, pool=pool_use(db.engine.pool))


def pool_use(pool: Pool) -> dict[str, int]:
    """Size and use of a queue pool (empty for pools that do not count, such as SQLite's
    static or null pools)."""
    use: dict[str, int] = {}
    for name, method in (("size", "size"), ("checked_out", "checkedout"), ("overflow", "overflow")):
        value = getattr(pool, method, None)
        if callable(value):
            try:
                use[name] = int(value())
            except (TypeError, ValueError):
                continue
    return use


def _pool_gauges(pool: dict[str, int]) -> Iterator[Metric]:
    helps = {
        "size": "Connections the database pool keeps.",
        "checked_out": "Database connections in use now.",
        "overflow": "Connections opened beyond the pool size (negative: unopened slots).",
    }
    for name, value in pool.items():
        yield GaugeMetricFamily(f"fabric_db_pool_{name}", helps[name], value=value)
