"""The monthly spending limit of an organization, and which of its alerts already fired."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from fabric_server.db.base import Base, Timestamped
from fabric_server.db.types import JSONType

DEFAULT_ALERT_THRESHOLDS = (0.5, 0.8, 1.0)


class OrganizationBudget(Timestamped, Base):
    """One row per organization that ever set a budget (none: no limit).

    `thresholds_reached` lists the fractions of the limit whose `budget.threshold_reached`
    event was recorded in the period starting `alerts_period_start`; a new month (or a new
    limit) starts the list afresh. The row is locked whenever the list may change, so each
    threshold fires once per period however many executions finish at the same time.
    """

    __tablename__ = "organization_budgets"
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    monthly_limit_usd: Mapped[float | None] = mapped_column(Float)
    alert_thresholds: Mapped[list[float]] = mapped_column(
        JSONType, default=lambda: list(DEFAULT_ALERT_THRESHOLDS)
    )
    alerts_period_start: Mapped[dt.datetime | None] = mapped_column()
    thresholds_reached: Mapped[list[float]] = mapped_column(JSONType, default=list)
    updated_by: Mapped[str | None] = mapped_column(String(36))


class OrganizationSpend(Base):
    """What an organization's usage cost in one UTC calendar month, kept as it happens.

    Every usage row that costs something adds its cost here in the same transaction, so a
    budget check reads one row instead of summing the month's usage.
    """

    __tablename__ = "organization_spend"
    organization_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    period_start: Mapped[dt.datetime] = mapped_column(primary_key=True)
    spent_usd: Mapped[float] = mapped_column(Float, default=0.0)
