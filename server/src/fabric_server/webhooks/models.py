"""Tables for webhooks: endpoints, one delivery per (endpoint, event), one row per attempt,
and the dispatcher's position in the event log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from fabric_server.db.base import Base, Timestamped
from fabric_server.db.types import JSONType, new_id, utcnow


class Webhook(Timestamped, Base):
    """An endpoint of an organization, subscribed to event kinds."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_org_id", "organization_id", "id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(500))
    event_filter: Mapped[list[str]] = mapped_column(JSONType)
    resource_filter: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # The signing secret, sealed with the master key (`webhooks.sealing`); never stored in
    # clear, never returned after creation, never logged.
    secret_nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    secret_key_id: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    max_retries: Mapped[int] = mapped_column(Integer)
    # Events with a larger sequence number are delivered: the webhook's own `webhook.created`
    # (or re-activating `webhook.updated`) event marks where its subscription starts.
    start_seq: Mapped[int] = mapped_column(BigInteger)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    failing_since: Mapped[dt.datetime | None] = mapped_column()
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(String(36))


class WebhookDelivery(Base):
    """One event for one endpoint. The body is frozen at dispatch, so every retry sends the
    same bytes under the same delivery id."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        # Retention deletes the oldest finished deliveries first.
        Index("ix_webhook_deliveries_completed_at", "completed_at"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    organization_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(36))
    event_seq: Mapped[int] = mapped_column(BigInteger)
    event_kind: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_retry_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column()


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: `pending` until it ran, then its outcome."""

    __tablename__ = "webhook_delivery_attempts"
    __table_args__ = (
        UniqueConstraint("delivery_id", "attempt"),
        Index("ix_webhook_delivery_attempts_webhook_id", "webhook_id", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    webhook_id: Mapped[str] = mapped_column(String(36))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    next_retry_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column()


class WebhookDispatchState(Base):
    """A single row: the sequence number of the last event the dispatcher has handled."""

    __tablename__ = "webhook_dispatch_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
