"""Usage of an organization: what its provider executions used and cost, by period."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.access.service import Access
from fabric_server.errors import Unprocessable
from fabric_server.paging import PageRequest
from fabric_server.usage import repository
from fabric_server.usage.models import UsageRecord
from fabric_server.usage.repository import RecordFilter

READ_ACTION = "usage.read"
MAX_DAYS = 366


def month_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC)


def next_month_start(day: dt.date) -> dt.datetime:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return dt.datetime(year, month, 1, tzinfo=dt.UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """Timestamps without a zone are read as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _check_order(start: Any, end: Any) -> None:
    if start is not None and end is not None and start >= end:
        raise Unprocessable(
            "start must be before end.",
            details={"errors": [{"path": "start", "message": "must be before end"}]},
        )


async def summary(
    access: Access,
    session: AsyncSession,
    principal: Principal,
    org_id: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    today: dt.date,
) -> dict[str, Any]:
    """Totals over [start, end); by default the current calendar month (UTC)."""
    await access.authorize(session, principal, org_id, READ_ACTION)
    period_end_given = as_utc(end)
    if start is None and period_end_given is not None:
        start = month_start((period_end_given - dt.timedelta(microseconds=1)).date())
    period_start = as_utc(start) or month_start(today)
    period_end = period_end_given or next_month_start(period_start.date())
    _check_order(period_start, period_end)
    totals = await repository.totals(session, org_id, period_start, period_end)
    providers = await repository.by_provider(session, org_id, period_start, period_end)
    return {
        "organization_id": org_id,
        "period_start": period_start,
        "period_end": period_end,
        "total_runs": totals["runs"],
        "total_jobs": totals["jobs"],
        "total_executions": totals["executions"],
        "input_tokens": totals["input_tokens"],
        "output_tokens": totals["output_tokens"],
        "total_cost_usd": round(float(totals["cost_usd"]), 8),
        "currency": "USD",
        "by_provider": [
            {
                "provider_id": row["provider_id"],
                "model": row["model"],
                "executions": row["executions"],
                "input_tokens": row["input_tokens"],
                "output_tokens": row["output_tokens"],
                "cost_usd": round(float(row["cost_usd"]), 8),
            }
            for row in providers
        ],
    }


async def records(
    access: Access,
    session: AsyncSession,
    principal: Principal,
    org_id: str,
    where: RecordFilter,
    page: PageRequest,
) -> tuple[list[UsageRecord], str | None]:
    await access.authorize(session, principal, org_id, READ_ACTION)
    where = RecordFilter(
        provider_id=where.provider_id,
        model=where.model,
        job_id=where.job_id,
        start=as_utc(where.start),
        end=as_utc(where.end),
    )
    _check_order(where.start, where.end)
    rows = await repository.page(session, org_id, where, limit=page.limit + 1, after=page.after_id)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return rows, (repository.position_of(rows[-1]) if more and rows else None)


async def daily(
    access: Access,
    session: AsyncSession,
    principal: Principal,
    org_id: str,
    start: dt.date | None,
    end: dt.date | None,
    today: dt.date,
) -> list[dict[str, Any]]:
    """One row per UTC day in [start, end), zero rows included; by default the current
    month up to and including today."""
    await access.authorize(session, principal, org_id, READ_ACTION)
    if start is None and end is not None:
        start = (end - dt.timedelta(days=1)).replace(day=1)
    first = start or today.replace(day=1)
    stop = end or (max(first, today) + dt.timedelta(days=1))
    _check_order(first, stop)
    days = (stop - first).days
    if days > MAX_DAYS:
        raise Unprocessable(
            f"A daily report covers at most {MAX_DAYS} days; this one asks for {days}.",
            details={"errors": [{"path": "end", "message": f"at most {MAX_DAYS} days"}]},
        )
    since = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    until = dt.datetime.combine(stop, dt.time(), tzinfo=dt.UTC)
    found = await repository.by_day(session, org_id, since, until)
    rows = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        data = found.get(day.isoformat(), {})
        rows.append(
            {
                "date": day,
                "executions": data.get("executions", 0),
                "jobs": data.get("jobs", 0),
                "runs": data.get("runs", 0),
                "input_tokens": data.get("input_tokens", 0),
                "output_tokens": data.get("output_tokens", 0),
                "cost_usd": round(float(data.get("cost_usd", 0.0)), 8),
            }
        )
    return rows
