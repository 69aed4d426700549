"""Tables of schedules: the schedules themselves and the record of every firing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fabric_server.db.base import Base, Timestamped
from fabric_server.db.types import JSONType, new_id, utcnow


class Schedule(Timestamped, Base):
    """A cron schedule that starts runs of a workflow definition.

    `next_run_at` is the next cron occurrence still to be handled (UTC), NULL while disabled.
    `fire_count` numbers the firings, so history has one order even under a frozen clock.
    """

    __tablename__ = "schedules"
    __table_args__ = (
        Index("ix_schedules_next_run_at", "next_run_at"),
        Index("ix_schedules_definition", "workflow_definition_id", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    workflow_definition_id: Mapped[str] = mapped_column(
        ForeignKey("workflow_definitions.id", ondelete="CASCADE")
    )
    cron_expression: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    concurrency_policy: Mapped[str] = mapped_column(String(16), default="allow")
    catchup_policy: Mapped[str] = mapped_column(String(16), default="skip")
    input_context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str | None] = mapped_column(Text)
    next_run_at: Mapped[dt.datetime | None] = mapped_column()
    last_run_at: Mapped[dt.datetime | None] = mapped_column()
    # Runs are referenced without foreign keys: a schedule never owns its runs.
    last_run_id: Mapped[str | None] = mapped_column(String(36))
    fire_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(String(36))


class ScheduleFiring(Base):
    """One entry of a schedule's history: a run it started, or an occurrence it skipped.

    The unique key on (schedule_id, scheduled_for) is what makes double firing impossible:
    however many schedulers race, only one row per cron occurrence can ever commit. Manual
    triggers have no scheduled time (NULL), so any number of them may be recorded.
    `held` marks a run that waits for the previous one to finish (concurrency policy `queue`).
    """

    __tablename__ = "schedule_firings"
    __table_args__ = (
        UniqueConstraint("schedule_id", "scheduled_for", name="uq_schedule_firings_occurrence"),
        UniqueConstraint("schedule_id", "sequence", name="uq_schedule_firings_sequence"),
        Index("ix_schedule_firings_held", "held", "schedule_id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    organization_id: Mapped[str] = mapped_column(String(36))
    sequence: Mapped[int] = mapped_column(Integer)
    scheduled_for: Mapped[dt.datetime | None] = mapped_column()
    fired_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    trigger: Mapped[str] = mapped_column(String(8))
    run_id: Mapped[str | None] = mapped_column(String(36))
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
