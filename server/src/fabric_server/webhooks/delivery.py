"""Delivering one event to one endpoint: a `webhook.deliver` work item per HTTP attempt.

The attempt runs outside any transaction; its outcome, the next attempt (if any) and the
completion of the work item are then written in one transaction, guarded by the lease. A
worker that dies mid-attempt leaves the attempt `pending`; the reclaimed item sends it again
under the same `X-Fabric-Delivery` id (at-least-once; receivers de-duplicate on that id).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import ssl
import time
from dataclasses import dataclass

import httpcore
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.database import Database, after_commit
from fabric_server.db.types import utcnow
from fabric_server.engine.handler import RetryingHandler
from fabric_server.engine.models import WorkItem
from fabric_server.engine.queue import WorkQueue
from fabric_server.events.outbox import EventRecorder
from fabric_server.net.guard import BlockedAddress
from fabric_server.net.http import OutboundClient
from fabric_server.observability import calls
from fabric_server.secrets.crypto import MasterKey, SecretUnreadable
from fabric_server.webhooks import repository
from fabric_server.webhooks.dispatcher import DELIVER_KIND, DELIVER_MAX_CLAIMS
from fabric_server.webhooks.models import WebhookAttempt, WebhookDelivery
from fabric_server.webhooks.sealing import signing_secret
from fabric_server.webhooks.signing import delivery_headers

log = logging.getLogger("fabric_server.webhooks")
RESPONSE_BODY_LIMIT = 1024
_NETWORK_ERRORS = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    ssl.SSLError,
    OSError,
)


@dataclass(frozen=True)
class RetrySchedule:
    """Delay before retry n: `steps[n-1]` (the last step repeats), ±10 % jitter. A receiver's
    `Retry-After` (on 429/503) replaces it, kept within [first step, `retry_after_max`]."""

    steps: tuple[float, ...]
    retry_after_max: float

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, self.steps[0]), self.retry_after_max)
        base = self.steps[min(retry, len(self.steps)) - 1]
        return base * random.uniform(0.9, 1.1)


@dataclass(frozen=True)
class DisablePolicy:
    after_days: float  # 0 = never
    after_failures: int  # 0 = never


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    latency_ms: int
    response_body: str | None
    error: str | None
    retry_after: float | None = None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a `Retry-After` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


class DeliveryHandler(RetryingHandler):
    def __init__(
        self,
        db: Database,
        queue: WorkQueue,
        events: EventRecorder,
        client: OutboundClient,
        master_key: MasterKey,
        *,
        timeout: float,
        schedule: RetrySchedule,
        disable: DisablePolicy,
    ) -> None:
        super().__init__(db, queue)
        self.events = events
        self.client = client
        self.master_key = master_key
        self.timeout = timeout
        self.schedule = schedule
        self.disable = disable

    async def execute(self, item: WorkItem) -> None:
        number = int(item.payload.get("attempt", 1))
        async with self.db.read() as session:
            delivery = await repository.get_delivery(session, item.ref_id or "")
            webhook = await repository.get(session, delivery.webhook_id) if delivery else None
        if delivery is None or delivery.status in ("succeeded", "failed"):
            async with self.db.write() as session:
                await self.queue.complete(session, item)
            return
        if webhook is None or not webhook.active:
            outcome = Outcome(False, None, 0, None, "not sent: the webhook is disabled")
            async with self.db.write() as session:
                await self._record(session, delivery.id, number, outcome, final=True, counts=False)
                await self.queue.complete(session, item)
            return
        # A redelivery asked for by hand is one attempt, never retried on its own.
        retries_left = number <= webhook.max_retries and not item.payload.get("once")
        try:
            secret = signing_secret(webhook, self.master_key.cipher)
        except SecretUnreadable as exc:
            # The server's fault (a changed master key), not the receiver's: retried, and
            # never counted towards disabling the endpoint.
            log.error("webhook delivery %s not sent: %s", delivery.id, exc)
            outcome = Outcome(False, None, 0, None, f"not sent: {exc}")
            async with self.db.write() as session:
                await self._record(
                    session, delivery.id, number, outcome, final=not retries_left, counts=False
                )
                await self.queue.complete(session, item)
            return
        outcome = await self.send(webhook.url, secret, delivery.body.encode(), delivery, number)
        async with self.db.write() as session:
            await self._record(session, delivery.id, number, outcome, final=not retries_left)
            await self.queue.complete(session, item)

    async def send(
        self, url: str, secret: str, body: bytes, delivery: WebhookDelivery, number: int
    ) -> Outcome:
        headers = delivery_headers(
            secret,
            body,
            delivery_id=delivery.id,
            event_kind=delivery.event_kind,
            timestamp=int(time.time()),
            attempt=number,
        )
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            response = await self.client.post(
                url, headers, body, timeout=self.timeout, max_body=RESPONSE_BODY_LIMIT
            )
        except BlockedAddress as exc:
            return Outcome(False, None, elapsed(), None, f"not sent: {exc}")
        except (TimeoutError, httpcore.TimeoutException):
            return Outcome(False, None, elapsed(), None, f"timed out after {self.timeout:g} s")
        except _NETWORK_ERRORS as exc:
            return Outcome(False, None, elapsed(), None, f"{type(exc).__name__}: {exc}")
        text = response.body.decode("utf-8", errors="replace")
        ok = 200 <= response.status < 300
        retry_after = None
        if response.status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
        error = None if ok else f"the receiver answered HTTP {response.status}"
        return Outcome(ok, response.status, elapsed(), text, error, retry_after)

    async def _record(
        self,
        session: AsyncSession,
        delivery_id: str,
        number: int,
        outcome: Outcome,
        *,
        final: bool,
        counts: bool = True,
    ) -> None:
        """Write the attempt's outcome, then schedule the next attempt or settle the delivery.

        `counts=False` for failures that say nothing about the receiver (not sent because the
        endpoint is off, or the server itself failed): they never disable an endpoint.
        """
        delivery = await repository.get_delivery(session, delivery_id)
        if delivery is None or not await repository.hold_webhook(session, delivery.webhook_id):
            return  # the webhook was deleted meanwhile
        delivery = await repository.get_delivery(session, delivery_id, fresh=True)
        if delivery is None:
            return
        now = utcnow()
        attempt = await repository.attempt_of(session, delivery.id, number)
        if attempt is None:
            attempt = WebhookAttempt(
                delivery_id=delivery.id, webhook_id=delivery.webhook_id, attempt=number
            )
            session.add(attempt)
        attempt.status_code = outcome.status_code
        attempt.latency_ms = outcome.latency_ms
        attempt.response_body = outcome.response_body
        attempt.error = outcome.error
        attempt.completed_at = now
        delivery.attempts = number
        delivery.updated_at = now
        settled = "succeeded" if outcome.ok else "failed" if final else "retrying"
        seconds = outcome.latency_ms / 1000
        after_commit(session, lambda: calls.webhook_attempt(settled, number, seconds))
        if outcome.ok:
            attempt.status = delivery.status = "succeeded"
            delivery.next_retry_at = None
            delivery.completed_at = now
            await repository.note_success(session, delivery.webhook_id)
            return
        since = None
        if counts:
            since = await repository.note_failed_attempt(session, delivery.webhook_id, now)
        reason = None
        if final:
            attempt.status = delivery.status = "failed"
            delivery.next_retry_at = None
            delivery.completed_at = now
            limit = self.disable.after_failures
            if counts:
                in_a_row = await repository.note_failed_delivery(session, delivery.webhook_id)
                if limit and in_a_row >= limit:
                    reason = f"{in_a_row} deliveries in a row failed"
        else:
            delay = self.schedule.delay(number, outcome.retry_after)
            retry_at = now + dt.timedelta(seconds=delay)
            attempt.status = delivery.status = "retrying"
            attempt.next_retry_at = delivery.next_retry_at = retry_at
            session.add(
                WebhookAttempt(
                    delivery_id=delivery.id,
                    webhook_id=delivery.webhook_id,
                    attempt=number + 1,
                    status="pending",
                    created_at=now,
                )
            )
            await self.queue.enqueue(
                session,
                DELIVER_KIND,
                ref_id=delivery.id,
                organization_id=delivery.organization_id,
                payload={"attempt": number + 1},
                delay_seconds=delay,
                max_attempts=DELIVER_MAX_CLAIMS,
            )
        days = self.disable.after_days
        if reason is None and days and since is not None and now - since >= dt.timedelta(days=days):
            reason = f"every delivery failed since {since.isoformat()} ({days:g} days or more)"
        if reason is not None:
            await self._disable(session, delivery, f"{reason}; last error: {outcome.error}")

    async def _disable(self, session: AsyncSession, delivery: WebhookDelivery, reason: str) -> None:
        reason = reason[:500]
        if await repository.disable(session, delivery.webhook_id, reason, utcnow()):
            log.warning("webhook %s disabled: %s", delivery.webhook_id, reason)
            await self.events.record(
                session,
                "webhook.disabled",
                organization_id=delivery.organization_id,
                payload={"webhook_id": delivery.webhook_id, "reason": reason},
            )

    async def on_failure(self, session: AsyncSession, item: WorkItem, error: str) -> None:
        """The attempt itself kept crashing (not the receiver failing): give the delivery up."""
        number = int(item.payload.get("attempt", 1))
        outcome = Outcome(False, None, 0, None, f"delivery failed inside the server: {error}")
        await self._record(session, item.ref_id or "", number, outcome, final=True, counts=False)
