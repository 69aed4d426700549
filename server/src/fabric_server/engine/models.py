"""The durable work queue's table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fabric_server.db.base import Base
from fabric_server.db.types import JSONType, StatusType, new_id, utcnow
from fabric_server.engine.status import WorkStatus


class WorkItem(Base):
    """One unit of durable work: claimed under a lease, retried with backoff."""

    __tablename__ = "work_items"
    __table_args__ = (
        Index("ix_work_items_claim", "status", "available_at"),
        Index("ix_work_items_ref", "kind", "ref_id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(64))
    ref_id: Mapped[str | None] = mapped_column(String(36))
    organization_id: Mapped[str | None] = mapped_column(String(36))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[WorkStatus] = mapped_column(StatusType(WorkStatus), default=WorkStatus.QUEUED)
    available_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
