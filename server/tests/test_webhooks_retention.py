"""Delivery history retention: finished deliveries older than the window go, with their
attempts; recent ones, and deliveries still pending or retrying, stay."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from webhook_helpers import ORG, attempts, create_webhook, running_app

from fabric_server.db.types import new_id
from fabric_server.events.retention import prune_once
from fabric_server.runtime import retention_rules
from fabric_server.services import Services, build_services
from fabric_server.testing import fast_settings
from fabric_server.webhooks.models import WebhookAttempt, WebhookDelivery
from fabric_server.webhooks.retention import prune_deliveries

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


async def add_delivery(
    session: AsyncSession, webhook_id: str, status: str, finished_days_ago: float | None
) -> str:
    """A delivery created 45 days before NOW, finished `finished_days_ago` (None: not yet),
    with one attempt."""
    created = NOW - dt.timedelta(days=45)
    finished = None if finished_days_ago is None else NOW - dt.timedelta(days=finished_days_ago)
    delivery_id = new_id()
    session.add(
        WebhookDelivery(
            id=delivery_id,
            webhook_id=webhook_id,
            organization_id=ORG,
            event_id=new_id(),
            event_seq=0,
            event_kind="job.completed",
            body="{}",
            status=status,
            attempts=1,
            created_at=created,
            updated_at=finished or created,
            completed_at=finished,
        )
    )
    await session.flush()  # the attempt refers to it
    session.add(
        WebhookAttempt(
            delivery_id=delivery_id,
            webhook_id=webhook_id,
            attempt=1,
            status=status,
            created_at=created,
            completed_at=finished,
        )
    )
    return delivery_id


async def stored(services: Services) -> tuple[set[str], set[str]]:
    """The ids of the stored deliveries, and the delivery ids the stored attempts belong to."""
    async with services.db.read() as session:
        deliveries = set(await session.scalars(select(WebhookDelivery.id)))
        attempts = set(await session.scalars(select(WebhookAttempt.delivery_id)))
    return deliveries, attempts


async def test_old_finished_deliveries_are_pruned_with_their_attempts(
    client: httpx.AsyncClient, services: Services
) -> None:
    hook = await create_webhook(client, "http://127.0.0.1:9/x", active=False)
    async with services.db.write() as session:
        for status, days in [
            ("succeeded", 31),
            ("failed", 40),
            ("succeeded", 45),
            ("failed", 60),
            ("succeeded", 30.01),
        ]:
            await add_delivery(session, hook["id"], status, days)
        kept = {
            await add_delivery(session, hook["id"], "succeeded", 29),
            await add_delivery(session, hook["id"], "failed", 1),
            # Created long ago, but not finished: never pruned, however old.
            await add_delivery(session, hook["id"], "pending", None),
            await add_delivery(session, hook["id"], "retrying", None),
        }

    cutoff = NOW - dt.timedelta(days=30)
    assert await prune_deliveries(services.db, cutoff, batch=2) == 5  # three batches
    assert await stored(services) == (kept, kept)
    assert await prune_deliveries(services.db, cutoff) == 0
    assert {a["delivery_id"] for a in await attempts(client, hook["id"])} == kept


async def test_the_retention_pass_follows_the_setting(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path, webhook_delivery_retention_days=7)
    async with running_app(settings) as (client, services):
        hook = await create_webhook(client, "http://127.0.0.1:9/x", active=False)
        async with services.db.write() as session:
            await add_delivery(session, hook["id"], "succeeded", 8)
            recent = await add_delivery(session, hook["id"], "failed", 6)
        rules = retention_rules(services)
        assert [(rule.what, rule.days) for rule in rules][:2] == [
            ("events", 30.0),
            ("webhook deliveries", 7.0),
        ]
        deliveries = [rule for rule in rules if rule.what == "webhook deliveries"]
        assert await prune_once(deliveries, NOW) == {"webhook deliveries": 1}
        assert await stored(services) == ({recent}, {recent})

    kept_forever = build_services(
        fast_settings(database_url, tmp_path, webhook_delivery_retention_days=0)
    )
    try:
        assert "webhook deliveries" not in [rule.what for rule in retention_rules(kept_forever)]
    finally:
        await kept_forever.db.dispose()
