"""Monthly spending limits: reading and setting them, refusing paid provider calls once the
month's spend reached the limit, and alerting when spend crosses a share of it.

The period is the current UTC calendar month. Spend is the cost of the organization's usage
rows in the period, so it counts every execution however it ran (job, direct call, stream,
workflow node); it is kept as a running total, added to in the transaction that records each
paid usage row, so checking it reads one row. The limit is a stop, not a reservation: a call is
refused when the spend already reached the limit and the call would cost something (the
estimate its caller supplies is above zero), so calls running when the limit is reached still
finish, and spend can end a little above the limit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.access.service import Access
from fabric_server.budgets import repository
from fabric_server.budgets.models import DEFAULT_ALERT_THRESHOLDS, OrganizationBudget
from fabric_server.db.types import utcnow
from fabric_server.db.versions import BUDGETS, VersionedCache, Versions
from fabric_server.errors import DomainError
from fabric_server.events.outbox import EventRecorder
from fabric_server.usage import repository as usage_repository
from fabric_server.usage.models import UsageRecord
from fabric_server.usage.service import month_start, next_month_start

READ_ACTION = "usage.read"
UPDATE_ACTION = "budget.update"
THRESHOLD_EVENT = "budget.threshold_reached"
# Spend and limits are compared as reported: rounded to this many decimals of a dollar.
PRECISION = 8


class BudgetExceeded(DomainError):
    """The organization's monthly limit is reached and the call would cost money.

    402 Payment Required: the request is fine and nothing is wrong with the caller's
    credentials; it will succeed once money is allowed again (next month, or a higher limit).
    """

    status_code = 402
    code = "budget_exceeded"


@dataclass(frozen=True)
class CallEstimate:
    """What a provider call would most likely cost, and on which model."""

    cost_usd: float
    model: str


@dataclass(frozen=True)
class Period:
    start: dt.datetime
    end: dt.datetime


class BudgetService:
    def __init__(
        self,
        access: Access,
        events: EventRecorder,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.access = access
        self.events = events
        self.clock = clock
        self._limits: VersionedCache[str, float | None] | None = None

    def use_cache(self, versions: Versions) -> None:
        """Keep each organization's limit in memory, exact thanks to the `budgets` version
        counter (the spend itself is always read: it changes with every paid call)."""
        self._limits = VersionedCache(versions, BUDGETS)

    async def limit(self, session: AsyncSession, org_id: str) -> float | None:
        """The organization's monthly limit in USD (None: no limit)."""

        async def load() -> float | None:
            budget = await repository.get(session, org_id)
            return None if budget is None else budget.monthly_limit_usd

        if self._limits is None:
            return await load()
        return await self._limits.get(session, org_id, load)

    def period(self) -> Period:
        """The current UTC calendar month."""
        today = self.clock().astimezone(dt.UTC).date()
        return Period(month_start(today), next_month_start(today))

    async def view(
        self, session: AsyncSession, principal: Principal, org_id: str
    ) -> dict[str, Any]:
        """The budget and this month's spend (`usage.read`)."""
        await self.access.authorize(session, principal, org_id, READ_ACTION)
        period = self.period()
        budget = await repository.get(session, org_id)
        return _view(org_id, budget, await self._spent(session, org_id, period), period)

    async def set(
        self,
        session: AsyncSession,
        principal: Principal,
        org_id: str,
        monthly_limit_usd: float | None,
        alert_thresholds: Sequence[float] | None,
    ) -> dict[str, Any]:
        """Set (or with None, remove) the limit; `alert_thresholds` None keeps the current
        ones. A new limit starts the month's alerts afresh, and thresholds the spend already
        crossed under it fire at once."""
        await self.access.authorize(session, principal, org_id, UPDATE_ACTION)
        await repository.create_if_missing(session, org_id)
        budget = await repository.lock(session, org_id)
        assert budget is not None
        period = self.period()
        if budget.monthly_limit_usd != monthly_limit_usd:
            budget.monthly_limit_usd = monthly_limit_usd
            budget.alerts_period_start, budget.thresholds_reached = period.start, []
        if alert_thresholds is not None:
            thresholds = sorted(set(alert_thresholds))
            budget.alert_thresholds = thresholds
            budget.thresholds_reached = [t for t in budget.thresholds_reached if t in thresholds]
        budget.updated_by = principal.id
        budget.updated_at = utcnow()
        spent = await self._spent(session, org_id, period)
        await session.flush()
        await self.events.record(
            session,
            "budget.updated",
            organization_id=org_id,
            payload={
                "monthly_limit_usd": budget.monthly_limit_usd,
                "alert_thresholds": budget.alert_thresholds,
                "by": principal.id,
            },
        )
        await self._alert(session, budget, spent, period)
        return _view(org_id, budget, spent, period)

    async def spending(
        self, session: AsyncSession, principal: Principal, org_id: str
    ) -> dict[str, Any]:
        """This month's spend so far, by UTC day (every day up to today) and by provider."""
        await self.access.authorize(session, principal, org_id, READ_ACTION)
        period = self.period()
        budget = await repository.get(session, org_id)
        spent = await self._spent(session, org_id, period)
        days = await usage_repository.by_day(session, org_id, period.start, period.end)
        providers: dict[str, dict[str, Any]] = {}
        for row in await usage_repository.by_provider(session, org_id, period.start, period.end):
            entry = providers.setdefault(
                row["provider_id"],
                {"provider_id": row["provider_id"], "executions": 0, "cost_usd": 0.0},
            )
            entry["executions"] += row["executions"]
            entry["cost_usd"] += float(row["cost_usd"])
        first, today = period.start.date(), self.clock().astimezone(dt.UTC).date()
        by_day = []
        for offset in range((today - first).days + 1):
            day = first + dt.timedelta(days=offset)
            found = days.get(day.isoformat(), {})
            by_day.append(
                {
                    "date": day,
                    "executions": found.get("executions", 0),
                    "cost_usd": round(float(found.get("cost_usd", 0.0)), PRECISION),
                }
            )
        view = _view(org_id, budget, spent, period)
        return {
            "organization_id": org_id,
            "period_start": period.start,
            "period_end": period.end,
            "currency": "USD",
            "spent_usd": spent,
            "monthly_limit_usd": view["monthly_limit_usd"],
            "remaining_usd": view["remaining_usd"],
            "by_day": by_day,
            "by_provider": [
                {**entry, "cost_usd": round(entry["cost_usd"], PRECISION)}
                for entry in providers.values()
            ],
        }

    async def check(
        self,
        session: AsyncSession,
        org_id: str,
        estimate: Callable[[], CallEstimate | None],
    ) -> None:
        """Raise `BudgetExceeded` when the month's spend reached the limit and the call would
        cost something. `estimate` is asked only when there is a limit, and answers None for
        a call no configured provider can run (it fails on its own); such calls, and free ones
        (echo, unpriced models), always pass."""
        limit = await self.limit(session, org_id)
        if limit is None:
            return
        call = estimate()
        if call is None or call.cost_usd <= 0:
            return
        cost = call.cost_usd
        period = self.period()
        spent = await self._spent(session, org_id, period)
        if spent < limit:
            return
        raise BudgetExceeded(
            f"The organization's monthly budget of {usd(limit)} is spent ({usd(spent)} since "
            f"{period.start:%Y-%m-%d}); paid provider calls are refused until "
            f"{period.end:%Y-%m-%d} unless an admin raises the limit. This call would cost "
            f"about {usd(cost)} on {call.model}.",
            details={
                "monthly_limit_usd": limit,
                "spent_usd": spent,
                "estimated_cost_usd": cost,
                "period_start": period.start.isoformat(),
                "period_end": period.end.isoformat(),
            },
        )

    async def record_usage(self, session: AsyncSession, records: Sequence[UsageRecord]) -> None:
        """Add usage rows, and record a `budget.threshold_reached` event for each alert
        threshold their spend crossed this month.

        Call it before the transaction records any other event: it takes the budget row's
        lock, and events take the event-order lock, always in that order.
        """
        if not records:
            return
        session.add_all(records)
        paid: dict[tuple[str, dt.datetime], float] = {}
        for record in records:
            if record.cost_usd > 0:
                day = (record.created_at or self.clock()).astimezone(dt.UTC).date()
                month = (record.organization_id, month_start(day))
                paid[month] = paid.get(month, 0.0) + record.cost_usd
        if not paid:
            return  # free calls cost nothing and cross no threshold
        await session.flush()
        period = self.period()
        dialect = session.get_bind().dialect.name
        for (org_id, start), amount in sorted(paid.items()):
            await session.execute(repository.add_spend(dialect, org_id, start, amount))
        for org_id in sorted({org_id for org_id, _ in paid}):
            budget = await repository.lock(session, org_id)
            if budget is not None and budget.monthly_limit_usd is not None:
                await self._alert(
                    session, budget, await self._spent(session, org_id, period), period
                )

    async def _spent(self, session: AsyncSession, org_id: str, period: Period) -> float:
        return round(await repository.spent(session, org_id, period.start), PRECISION)

    async def _alert(
        self, session: AsyncSession, budget: OrganizationBudget, spent: float, period: Period
    ) -> None:
        """Fire the thresholds `spent` crossed that have not fired this period (the budget
        row must be locked)."""
        limit = budget.monthly_limit_usd
        if limit is None:
            return
        if budget.alerts_period_start != period.start:
            budget.alerts_period_start, budget.thresholds_reached = period.start, []
        reached = set(budget.thresholds_reached)
        due = [
            threshold
            for threshold in sorted(budget.alert_thresholds)
            if threshold not in reached
            and spent > 0
            and spent >= round(threshold * limit, PRECISION)
        ]
        if not due:
            return
        budget.thresholds_reached = sorted(reached | set(due))
        for threshold in due:
            await self.events.record(
                session,
                THRESHOLD_EVENT,
                organization_id=budget.organization_id,
                payload={
                    "threshold": threshold,
                    "spent_usd": spent,
                    "monthly_limit_usd": limit,
                    "period_start": period.start.isoformat(),
                },
            )


def _view(
    org_id: str, budget: OrganizationBudget | None, spent: float, period: Period
) -> dict[str, Any]:
    limit = budget.monthly_limit_usd if budget is not None else None
    reached: list[float] = []
    if budget is not None and budget.alerts_period_start == period.start:
        reached = list(budget.thresholds_reached)
    return {
        "organization_id": org_id,
        "monthly_limit_usd": limit,
        "alert_thresholds": (
            list(budget.alert_thresholds) if budget is not None else list(DEFAULT_ALERT_THRESHOLDS)
        ),
        "thresholds_reached": reached,
        "period_start": period.start,
        "period_end": period.end,
        "spent_usd": spent,
        "remaining_usd": None if limit is None else round(max(limit - spent, 0.0), PRECISION),
        "exceeded": limit is not None and spent >= limit,
        "currency": "USD",
        "updated_at": budget.updated_at if budget is not None else None,
    }


def usd(amount: float) -> str:
    """`$10.00`, `$0.0001`: cents at least, more digits only when there are any."""
    whole, _, fraction = f"{amount:.6f}".rstrip("0").partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"
