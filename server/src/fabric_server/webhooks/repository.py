"""SQL for webhooks: endpoints, the dispatcher's position, deliveries and their attempts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.events.models import Event
from fabric_server.webhooks.models import (
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDispatchState,
)

STATE_ID = 1

# ---- endpoints


async def get(session: AsyncSession, webhook_id: str) -> Webhook | None:
    return await session.get(Webhook, webhook_id)


async def for_organization(session: AsyncSession, org_id: str) -> list[Webhook]:
    rows = await session.scalars(
        select(Webhook).where(Webhook.organization_id == org_id).order_by(Webhook.id)
    )
    return list(rows)


async def count_for_organization(session: AsyncSession, org_id: str) -> int:
    value = await session.scalar(
        select(func.count()).select_from(Webhook).where(Webhook.organization_id == org_id)
    )
    return int(value or 0)


async def attempts_page(
    session: AsyncSession, webhook_id: str, *, limit: int, after_id: str | None
) -> list[tuple[WebhookAttempt, WebhookDelivery]]:
    """Attempts of one endpoint, newest first, keyset-paginated on the attempt id."""
    query = (
        select(WebhookAttempt, WebhookDelivery)
        .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
        .where(WebhookAttempt.webhook_id == webhook_id)
    )
    if after_id is not None:
        query = query.where(WebhookAttempt.id < after_id)
    rows = await session.execute(query.order_by(WebhookAttempt.id.desc()).limit(limit))
    return [(attempt, delivery) for attempt, delivery in rows]


# ---- dispatch


async def organizations_with_active_endpoints(session: AsyncSession) -> set[str]:
    rows = await session.scalars(select(Webhook.organization_id).where(Webhook.active).distinct())
    return set(rows)


async def earliest_active_start(session: AsyncSession) -> int | None:
    """The smallest `start_seq` of an active endpoint; None when no endpoint is active."""
    value = await session.scalar(select(func.min(Webhook.start_seq)).where(Webhook.active))
    return None if value is None else int(value)


async def dispatch_position(session: AsyncSession, *, lock: bool) -> int | None:
    """The dispatcher's position. With `lock` (PostgreSQL) the row is locked for this
    transaction, or None is returned when another dispatcher holds it."""
    query = select(WebhookDispatchState.last_seq).where(WebhookDispatchState.id == STATE_ID)
    if lock:
        query = query.with_for_update(skip_locked=True)
    value = await session.scalar(query)
    return None if value is None else int(value)


async def set_dispatch_position(session: AsyncSession, seq: int, now: dt.datetime) -> None:
    await session.execute(
        update(WebhookDispatchState)
        .where(WebhookDispatchState.id == STATE_ID)
        .values(last_seq=seq, updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def head_seq(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(Event.seq))) or 0)


def _subscribed_orgs() -> Any:
    return select(Webhook.organization_id).where(Webhook.active).distinct()


async def has_events_for_active_orgs(session: AsyncSession, after: int, upto: int) -> bool:
    query = select(Event.seq).where(
        Event.seq > after, Event.seq <= upto, Event.organization_id.in_(_subscribed_orgs())
    )
    return (await session.scalar(query.limit(1))) is not None


async def events_for_active_orgs(
    session: AsyncSession, after: int, upto: int, limit: int
) -> list[Event]:
    query = (
        select(Event)
        .where(Event.seq > after, Event.seq <= upto, Event.organization_id.in_(_subscribed_orgs()))
        .order_by(Event.seq)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def active_for_organizations(session: AsyncSession, org_ids: Sequence[str]) -> list[Webhook]:
    """The active endpoints, share-locked until the transaction ends: a webhook being deleted
    meanwhile is either waited for (and then not returned) or kept until the deliveries made
    for it are written (PostgreSQL; SQLite serialises writers anyway)."""
    rows = await session.scalars(
        select(Webhook)
        .where(Webhook.active, Webhook.organization_id.in_(list(org_ids)))
        .order_by(Webhook.id)
        .with_for_update(read=True)
    )
    return list(rows)


async def insert_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> list[str]:
    """Insert deliveries, skipping any (webhook, event) pair that already has one; returns
    the ids actually inserted."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(WebhookDelivery)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
        .returning(WebhookDelivery.id)
    )
    return list(await session.scalars(stmt))


# ---- delivery


async def get_delivery(
    session: AsyncSession, delivery_id: str, *, fresh: bool = False
) -> WebhookDelivery | None:
    """A delivery; `fresh` reads it again even when the session holds it already."""
    return await session.get(WebhookDelivery, delivery_id, populate_existing=fresh)


async def hold_webhook(session: AsyncSession, webhook_id: str) -> bool:
    """Keep the endpoint from being deleted until this transaction ends (`FOR KEY SHARE` on
    PostgreSQL: other deliveries and updates go on); False when it is gone already.

    Webhook transactions lock rows in one order — the endpoint, then its deliveries, then
    their attempts — which is also the order in which deleting an endpoint cascades."""
    query = select(Webhook.id).where(Webhook.id == webhook_id)
    return (await session.scalar(query.with_for_update(read=True, key_share=True))) is not None


async def lock_webhook(session: AsyncSession, webhook_id: str) -> Webhook | None:
    """The endpoint, read again and locked for an update (`FOR NO KEY UPDATE`)."""
    query = (
        select(Webhook)
        .where(Webhook.id == webhook_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return await session.scalar(query)


async def count_by_secret_key(session: AsyncSession) -> dict[str, int]:
    """How many signing secrets each master key (by key id) sealed."""
    rows = await session.execute(
        select(Webhook.secret_key_id, func.count()).group_by(Webhook.secret_key_id)
    )
    return {key_id: count for key_id, count in rows}


async def secrets_sealed_with(
    session: AsyncSession, key_ids: Collection[str], limit: int
) -> list[str]:
    """Ids of up to `limit` webhooks whose signing secret one of `key_ids` sealed."""
    rows = await session.scalars(
        select(Webhook.id)
        .where(Webhook.secret_key_id.in_(key_ids))
        .order_by(Webhook.id)
        .limit(limit)
    )
    return list(rows)


async def lock_secrets_sealed_with(
    session: AsyncSession, key_ids: Collection[str], after: str, limit: int
) -> list[Webhook]:
    """The next `limit` webhooks by id after `after` whose signing secret one of `key_ids`
    sealed, locked as `lock_webhook` does. One whose secret was set again meanwhile no longer
    matches and is left alone."""
    rows = await session.scalars(
        select(Webhook)
        .where(Webhook.secret_key_id.in_(key_ids), Webhook.id > after)
        .order_by(Webhook.id)
        .limit(limit)
        .with_for_update(key_share=True)
    )
    return list(rows)


async def reseal_secret(
    session: AsyncSession, webhook_id: str, nonce: bytes, ciphertext: bytes, key_id: str
) -> None:
    """Store a new sealing of the same signing secret; `updated_at` stays."""
    await session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values(
            secret_nonce=nonce,
            secret_ciphertext=ciphertext,
            secret_key_id=key_id,
            updated_at=Webhook.updated_at,
        )
        .execution_options(synchronize_session=False)
    )


async def attempt_of(session: AsyncSession, delivery_id: str, number: int) -> WebhookAttempt | None:
    return await session.scalar(
        select(WebhookAttempt).where(
            WebhookAttempt.delivery_id == delivery_id, WebhookAttempt.attempt == number
        )
    )


async def update_webhook(session: AsyncSession, webhook_id: str, **values: Any) -> int:
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


async def note_success(session: AsyncSession, webhook_id: str) -> None:
    """A delivery succeeded: the endpoint is healthy again (written only when it was not)."""
    await session.execute(
        update(Webhook)
        .where(
            Webhook.id == webhook_id,
            (Webhook.failing_since.is_not(None)) | (Webhook.consecutive_failures > 0),
        )
        .values(failing_since=None, consecutive_failures=0)
        .execution_options(synchronize_session=False)
    )


async def note_failed_attempt(
    session: AsyncSession, webhook_id: str, now: dt.datetime
) -> dt.datetime | None:
    """An attempt failed: start the failure streak if none is running; returns its start."""
    await session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.failing_since.is_(None))
        .values(failing_since=now)
        .execution_options(synchronize_session=False)
    )
    return await session.scalar(select(Webhook.failing_since).where(Webhook.id == webhook_id))


async def note_failed_delivery(session: AsyncSession, webhook_id: str) -> int:
    """A delivery gave up: count it (atomically); returns the failures in a row."""
    value = await session.scalar(
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values(consecutive_failures=Webhook.consecutive_failures + 1)
        .returning(Webhook.consecutive_failures)
        .execution_options(synchronize_session=False)
    )
    return int(value or 0)


async def disable(session: AsyncSession, webhook_id: str, reason: str, now: dt.datetime) -> bool:
    """Turn an active endpoint off; True only for the caller that actually turned it off."""
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.active)
        .values(active=False, disabled_reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


# ---- retention

FINISHED = ("succeeded", "failed")


async def delete_finished_deliveries(
    session: AsyncSession, older_than: dt.datetime, limit: int
) -> int:
    """Delete up to `limit` deliveries that finished before `older_than` (their attempts go
    by the foreign key's cascade); returns how many were deleted."""
    oldest = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status.in_(FINISHED),
            WebhookDelivery.completed_at < older_than,
        )
        .order_by(WebhookDelivery.completed_at)
        .limit(limit)
    )
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        delete(WebhookDelivery)
        .where(WebhookDelivery.id.in_(oldest.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
