"""Business rules for webhook endpoints: who may manage them, what a valid one looks like."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.access.service import Access
from fabric_server.db.types import new_id, utcnow
from fabric_server.engine.queue import WorkQueue
from fabric_server.errors import Conflict, NotFound, Unprocessable, ValidationFailed
from fabric_server.events.outbox import EventRecorder
from fabric_server.net.guard import AddressGuard, BlockedAddress
from fabric_server.paging import PageRequest
from fabric_server.secrets.crypto import MasterKey
from fabric_server.webhooks import repository
from fabric_server.webhooks.dispatcher import DELIVER_KIND, DELIVER_MAX_CLAIMS
from fabric_server.webhooks.matching import normalize_patterns
from fabric_server.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from fabric_server.webhooks.schemas import WebhookUpdate, _WebhookFields
from fabric_server.webhooks.sealing import seal_secret, set_secret
from fabric_server.webhooks.signing import generate_secret

MANAGE = "webhook.manage"
FINISHED_DELIVERY = ("succeeded", "failed")
MAX_WEBHOOKS_PER_ORGANIZATION = 100
_NOT_NULL = ("url", "active", "max_retries", "secret")


def _invalid(
    path: str, message: str, error: type[ValidationFailed] = ValidationFailed
) -> ValidationFailed:
    return error(
        f"Invalid request: {path}: {message}",
        details={"errors": [{"path": path, "in": "body", "message": message}]},
    )


def _patterns(events: list[str] | None, event_filter: list[str] | None) -> list[str]:
    """`events` and `event_filter` are two names for one list: either, or both if equal."""
    both = events is not None and event_filter is not None
    if both and normalize_patterns(events or []) != normalize_patterns(event_filter or []):
        raise _invalid(
            "events", "`events` and `event_filter` differ; send one of them", Unprocessable
        )
    return normalize_patterns(events if events is not None else event_filter or [])


class WebhookService:
    def __init__(
        self,
        access: Access,
        events: EventRecorder,
        guard: AddressGuard,
        master_key: MasterKey,
        queue: WorkQueue,
    ) -> None:
        self.access = access
        self.events = events
        self.guard = guard
        self.master_key = master_key
        self.queue = queue

    def _check_url(self, url: str) -> None:
        try:
            self.guard.check_url(url)
        except BlockedAddress as exc:
            # The documented syntax was met (schema); this is the server's address policy.
            raise _invalid("url", str(exc), Unprocessable) from None

    async def create(
        self, session: AsyncSession, principal: Principal, org_id: str, body: _WebhookFields
    ) -> tuple[Webhook, str]:
        """Create an endpoint; returns it with its secret (the only time it is shown)."""
        await self.access.authorize(session, principal, org_id, MANAGE)
        self._check_url(body.url)
        patterns = _patterns(body.events, body.event_filter)
        if await repository.count_for_organization(session, org_id) >= (
            MAX_WEBHOOKS_PER_ORGANIZATION
        ):
            raise Conflict(
                f"An organization may have at most {MAX_WEBHOOKS_PER_ORGANIZATION} webhooks."
            )
        secret = body.secret or generate_secret()
        webhook_id = new_id()
        event = await self.events.record(
            session,
            "webhook.created",
            organization_id=org_id,
            payload={
                "webhook_id": webhook_id,
                "url": body.url,
                "events": patterns,
                "active": body.active,
            },
        )
        await session.flush()  # the event's sequence number marks where delivery starts
        webhook = Webhook(
            id=webhook_id,
            organization_id=org_id,
            url=body.url,
            description=body.description,
            event_filter=patterns,
            resource_filter=body.resource_filter or None,
            active=body.active,
            max_retries=body.max_retries,
            start_seq=event.seq,
            consecutive_failures=0,
            created_by=principal.id,
        )
        set_secret(webhook, self.master_key.cipher, secret)
        session.add(webhook)
        await session.flush()
        return webhook, secret

    async def list_for(
        self, session: AsyncSession, principal: Principal, org_id: str
    ) -> list[Webhook]:
        await self.access.authorize(session, principal, org_id, MANAGE)
        return await repository.for_organization(session, org_id)

    async def get(self, session: AsyncSession, principal: Principal, webhook_id: str) -> Webhook:
        webhook = await repository.get(session, webhook_id)
        missing = f"Webhook {webhook_id} was not found."
        found, _ = await self.access.authorize_found(
            session, principal, webhook, MANAGE, missing=missing
        )
        return found

    async def update(
        self, session: AsyncSession, principal: Principal, webhook_id: str, body: WebhookUpdate
    ) -> Webhook:
        webhook = await self.get(session, principal, webhook_id)
        # The row lock before the event-order lock, as delivery transactions take them.
        locked = await repository.lock_webhook(session, webhook.id)
        if locked is None:
            raise NotFound(f"Webhook {webhook_id} was not found.")
        webhook = locked
        given = body.model_fields_set
        for name in _NOT_NULL:
            if name in given and getattr(body, name) is None:
                raise _invalid(name, "may not be null")
        changes: dict[str, Any] = {}
        if body.url is not None:
            self._check_url(body.url)
            changes["url"] = body.url
        if "events" in given or "event_filter" in given:
            changes["event_filter"] = _patterns(body.events, body.event_filter)
        if "description" in given:
            changes["description"] = body.description
        if "resource_filter" in given:
            changes["resource_filter"] = body.resource_filter or None
        if body.max_retries is not None:
            changes["max_retries"] = body.max_retries
        if body.secret is not None:
            sealed = seal_secret(self.master_key.cipher, webhook.id, body.secret)
            changes.update(
                secret_nonce=sealed.nonce,
                secret_ciphertext=sealed.ciphertext,
                secret_key_id=sealed.key_id,
            )
        reactivated = body.active is True and not webhook.active
        if body.active is not None:
            changes["active"] = body.active
        if body.active is not None and body.active != webhook.active:
            # A re-enabled endpoint starts afresh; a disabled one keeps no automatic reason.
            changes.update(disabled_reason=None, failing_since=None, consecutive_failures=0)
        event = await self.events.record(
            session,
            "webhook.updated",
            organization_id=webhook.organization_id,
            payload={
                "webhook_id": webhook.id,
                "changed": sorted({"events" if k == "event_filter" else k for k in given}),
                "active": changes.get("active", webhook.active),
            },
        )
        if reactivated:
            # Events written while it was off are not delivered later.
            await session.flush()
            changes["start_seq"] = event.seq
        for name, value in changes.items():
            setattr(webhook, name, value)
        webhook.updated_at = utcnow()
        await session.flush()
        return webhook

    async def delete(self, session: AsyncSession, principal: Principal, webhook_id: str) -> None:
        webhook = await self.get(session, principal, webhook_id)
        organization_id, url = webhook.organization_id, webhook.url
        # Row locks (the endpoint, then the cascade to its deliveries and their attempts)
        # before the event-order lock, in the order delivery transactions take them; another
        # order can deadlock on PostgreSQL.
        await session.delete(webhook)
        await session.flush()
        await self.events.record(
            session,
            "webhook.deleted",
            organization_id=organization_id,
            payload={"webhook_id": webhook_id, "url": url},
        )

    async def redeliver(
        self, session: AsyncSession, principal: Principal, webhook_id: str, delivery_id: str
    ) -> tuple[WebhookAttempt, WebhookDelivery]:
        """Send a finished delivery once more: the same body under the same delivery id (so a
        receiver that already has it can tell), as one more attempt, not retried if it fails.
        409 while the delivery is still pending or retrying."""
        webhook = await self.get(session, principal, webhook_id)
        # The row lock before anything else, as delivery transactions take them.
        if not await repository.hold_webhook(session, webhook.id):
            raise NotFound(f"Webhook {webhook_id} was not found.")
        delivery = await repository.get_delivery(session, delivery_id, fresh=True)
        if delivery is None or delivery.webhook_id != webhook.id:
            raise NotFound(f"Delivery {delivery_id} of webhook {webhook_id} was not found.")
        if delivery.status not in FINISHED_DELIVERY:
            raise Conflict(
                f"Delivery {delivery_id} is still {delivery.status}; it can be sent again "
                "once it has succeeded or failed.",
                details={"status": delivery.status},
            )
        now = utcnow()
        number = delivery.attempts + 1
        delivery.status = "pending"
        delivery.next_retry_at = None
        delivery.completed_at = None
        delivery.updated_at = now
        attempt = WebhookAttempt(
            delivery_id=delivery.id,
            webhook_id=delivery.webhook_id,
            attempt=number,
            status="pending",
            created_at=now,
        )
        session.add(attempt)
        await self.queue.enqueue(
            session,
            DELIVER_KIND,
            ref_id=delivery.id,
            organization_id=delivery.organization_id,
            payload={"attempt": number, "once": True},
            max_attempts=DELIVER_MAX_CLAIMS,
        )
        await session.flush()
        return attempt, delivery

    async def attempts(
        self, session: AsyncSession, principal: Principal, webhook_id: str, page: PageRequest
    ) -> tuple[list[tuple[WebhookAttempt, WebhookDelivery]], str | None]:
        webhook = await self.get(session, principal, webhook_id)
        rows = await repository.attempts_page(
            session, webhook.id, limit=page.limit + 1, after_id=page.after_id
        )
        more = len(rows) > page.limit
        rows = rows[: page.limit]
        return rows, (rows[-1][0].id if more and rows else None)
