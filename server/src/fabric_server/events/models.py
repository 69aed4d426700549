"""The event log (the transactional outbox)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fabric_server.db.base import Base
from fabric_server.db.types import BigIntPK, JSONType, new_id, utcnow


class Event(Base):
    """The transactional outbox: every state change writes one row in its own transaction."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_org_seq", "organization_id", "seq"),
        Index("ix_events_job_seq", "job_id", "seq"),
        Index("ix_events_run_seq", "run_id", "seq"),
    )
    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(100))
    organization_id: Mapped[str | None] = mapped_column(String(36))
    run_id: Mapped[str | None] = mapped_column(String(36))
    job_id: Mapped[str | None] = mapped_column(String(36))
    node_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
