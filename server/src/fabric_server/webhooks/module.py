"""The webhooks domain assembled: one object the service container holds."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.access.service import Access
from fabric_server.db.database import Database
from fabric_server.engine.queue import WorkQueue
from fabric_server.events.broadcaster import Broadcaster
from fabric_server.events.outbox import EventRecorder
from fabric_server.net.guard import AddressGuard
from fabric_server.net.http import OutboundClient
from fabric_server.secrets.crypto import MasterKey
from fabric_server.settings import Settings
from fabric_server.webhooks.delivery import DeliveryHandler, DisablePolicy, RetrySchedule
from fabric_server.webhooks.dispatcher import DELIVER_KIND, Dispatcher
from fabric_server.webhooks.service import WebhookService


@dataclass
class Webhooks:
    service: WebhookService
    dispatcher: Dispatcher
    handler: DeliveryHandler
    client: OutboundClient
    work_kind: str = DELIVER_KIND

    async def aclose(self) -> None:
        await self.client.aclose()


def build_webhooks(
    settings: Settings,
    db: Database,
    queue: WorkQueue,
    events: EventRecorder,
    access: Access,
    broadcaster: Broadcaster,
    master_key: MasterKey,
) -> Webhooks:
    guard = AddressGuard.build(
        allow_private=settings.webhook_private_allowed,
        allowed_networks=settings.webhook_allowed_networks,
    )
    client = OutboundClient(guard)
    handler = DeliveryHandler(
        db,
        queue,
        events,
        client,
        master_key,
        timeout=settings.webhook_timeout_seconds,
        schedule=RetrySchedule(
            tuple(settings.webhook_retry_schedule), settings.webhook_retry_after_max_seconds
        ),
        disable=DisablePolicy(
            settings.webhook_disable_after_days, settings.webhook_disable_after_failures
        ),
    )
    dispatcher = Dispatcher(
        db, queue, broadcaster, poll_seconds=settings.webhook_dispatch_poll_seconds
    )
    return Webhooks(
        service=WebhookService(access, events, guard, master_key, queue),
        dispatcher=dispatcher,
        handler=handler,
        client=client,
    )
