"""SQL for usage: totals, per-provider and per-day aggregates, and record pages.

Aggregation happens in the database on both dialects; only the expression that turns a
timestamp into its UTC calendar day differs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.paging import InvalidCursor
from fabric_server.usage.models import UsageRecord


@dataclass(frozen=True)
class RecordFilter:
    provider_id: str | None = None
    model: str | None = None
    job_id: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None


def _totals() -> list[Any]:
    return [
        func.count().label("executions"),
        func.count(func.distinct(UsageRecord.job_id)).label("jobs"),
        func.count(func.distinct(UsageRecord.run_id)).label("runs"),
        func.coalesce(func.sum(UsageRecord.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(UsageRecord.output_tokens), 0).label("output_tokens"),
        func.coalesce(func.sum(UsageRecord.cost_usd), 0.0).label("cost_usd"),
    ]


def _in_period(
    query: Select[Any], org_id: str, start: dt.datetime | None, end: dt.datetime | None
) -> Select[Any]:
    query = query.where(UsageRecord.organization_id == org_id)
    if start is not None:
        query = query.where(UsageRecord.created_at >= start)
    if end is not None:
        query = query.where(UsageRecord.created_at < end)
    return query


async def totals(
    session: AsyncSession, org_id: str, start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    row = (await session.execute(_in_period(select(*_totals()), org_id, start, end))).one()
    return dict(row._mapping)


async def cost(session: AsyncSession, org_id: str, start: dt.datetime, end: dt.datetime) -> float:
    """USD spent in [start, end): the sum of the period's recorded costs."""
    query = _in_period(
        select(func.coalesce(func.sum(UsageRecord.cost_usd), 0.0)), org_id, start, end
    )
    return float(await session.scalar(query) or 0.0)


async def by_provider(
    session: AsyncSession, org_id: str, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    query = _in_period(
        select(UsageRecord.provider_id, UsageRecord.model, *_totals()), org_id, start, end
    )
    query = query.group_by(UsageRecord.provider_id, UsageRecord.model).order_by(
        UsageRecord.provider_id, UsageRecord.model
    )
    return [dict(row._mapping) for row in await session.execute(query)]


async def by_day(
    session: AsyncSession, org_id: str, start: dt.datetime, end: dt.datetime
) -> dict[str, dict[str, Any]]:
    """Aggregates keyed by UTC day (`YYYY-MM-DD`); days without usage are absent."""
    day = _utc_day(session.get_bind().dialect.name).label("day")
    query = _in_period(select(day, *_totals()), org_id, start, end).group_by(day)
    return {str(row.day): dict(row._mapping) for row in await session.execute(query)}


def position_of(record: UsageRecord) -> str:
    """A record's place in the newest-first order, for a cursor: `<µs since epoch>_<id>`."""
    micros = int(record.created_at.timestamp() * 1_000_000)
    return f"{micros}_{record.id}"


def _after(position: str) -> ColumnElement[bool]:
    micros, _, record_id = position.partition("_")
    try:
        created = dt.datetime.fromtimestamp(int(micros) / 1_000_000, dt.UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidCursor("The cursor is not valid for usage records.") from exc
    return or_(
        UsageRecord.created_at < created,
        and_(UsageRecord.created_at == created, UsageRecord.id < record_id),
    )


async def page(
    session: AsyncSession,
    org_id: str,
    where: RecordFilter,
    *,
    limit: int,
    after: str | None,
) -> list[UsageRecord]:
    """Newest first (by time, then id), keyset-paginated on that pair."""
    query = _in_period(select(UsageRecord), org_id, where.start, where.end)
    if where.provider_id is not None:
        query = query.where(UsageRecord.provider_id == where.provider_id)
    if where.model is not None:
        query = query.where(UsageRecord.model == where.model)
    if where.job_id is not None:
        query = query.where(UsageRecord.job_id == where.job_id)
    if after is not None:
        query = query.where(_after(after))
    order = (UsageRecord.created_at.desc(), UsageRecord.id.desc())
    rows = await session.scalars(query.order_by(*order).limit(limit))
    return list(rows)


def _utc_day(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        # timestamptz → the UTC wall-clock time → its date, as text.
        return func.to_char(func.timezone("UTC", UsageRecord.created_at), "YYYY-MM-DD")
    # SQLite stores the UTC time as text ("YYYY-MM-DD HH:MM:SS…"): date() keeps its day.
    return func.date(UsageRecord.created_at)
