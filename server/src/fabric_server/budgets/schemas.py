"""Request and response models for budgets (the OpenAPI comes from these)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from fabric_server.bodies import RequestBody

Threshold = Annotated[float, Field(gt=0, le=1)]


class BudgetSet(RequestBody):
    model_config = ConfigDict(extra="forbid")

    monthly_limit_usd: float | None = Field(
        ge=0,
        le=1_000_000_000,
        allow_inf_nan=False,
        description="USD per UTC calendar month; null removes the limit",
    )
    alert_thresholds: list[Threshold] | None = Field(
        default=None,
        max_length=10,
        description="Shares of the limit that fire `budget.threshold_reached` once a month "
        "(default [0.5, 0.8, 1.0]); omitted: unchanged",
    )


class BudgetOut(BaseModel):
    organization_id: str
    monthly_limit_usd: float | None = Field(description="null: no limit")
    alert_thresholds: list[float]
    thresholds_reached: list[float] = Field(description="Thresholds that fired this month")
    period_start: dt.datetime
    period_end: dt.datetime
    spent_usd: float
    remaining_usd: float | None = Field(description="null without a limit; never below 0")
    exceeded: bool = Field(description="Spend reached the limit: paid calls are refused")
    currency: Literal["USD"]
    updated_at: dt.datetime | None = Field(description="null until a budget is first set")


class SpendingDayOut(BaseModel):
    date: dt.date
    executions: int
    cost_usd: float


class SpendingProviderOut(BaseModel):
    provider_id: str
    executions: int
    cost_usd: float


class SpendingOut(BaseModel):
    organization_id: str
    period_start: dt.datetime
    period_end: dt.datetime
    currency: Literal["USD"]
    spent_usd: float
    monthly_limit_usd: float | None
    remaining_usd: float | None
    by_day: list[SpendingDayOut] = Field(description="Each UTC day of the month up to today")
    by_provider: list[SpendingProviderOut]
