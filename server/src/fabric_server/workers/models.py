"""The table of code workers: each registration of a worker process of an organization."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fabric_server.db.base import Base
from fabric_server.db.types import JSONType, new_id, utcnow


class CodeWorker(Base):
    """A worker process, from its registration until it deregisters. `last_seen_at` moves
    with its heartbeats; `offline_at` is set once it was announced offline (stopped, or
    silent for too long) and cleared when it is heard from again."""

    __tablename__ = "code_workers"
    __table_args__ = (Index("ix_code_workers_org_id", "organization_id", "id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    #: [{"name": operation, "concurrency": n}, …]
    operations: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    sdk_version: Mapped[str | None] = mapped_column(String(64))
    host: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[str | None] = mapped_column(String(36))
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[dt.datetime | None] = mapped_column()
    offline_at: Mapped[dt.datetime | None] = mapped_column()
