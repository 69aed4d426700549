"""The webhooks domain assembled: one object the service container holds."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.assembly import Assembled, Platform
from fabric_server.net.guard import AddressGuard
from fabric_server.net.http import OutboundClient
from fabric_server.secrets.crypto import MasterKey
from fabric_server.secrets.rotation import SealedTable
from fabric_server.webhooks.delivery import DeliveryHandler, DisablePolicy, RetrySchedule
from fabric_server.webhooks.dispatcher import DELIVER_KIND, Dispatcher
from fabric_server.webhooks.rotation import WebhookSecretTable
from fabric_server.webhooks.service import WebhookService


@dataclass(kw_only=True)
class Webhooks(Assembled):
    service: WebhookService
    dispatcher: Dispatcher
    handler: DeliveryHandler
    client: OutboundClient
    #: Re-sealed by master key rotation.
    sealed_tables: list[SealedTable]
    work_kind: str = DELIVER_KIND

    async def aclose(self) -> None:
        await self.client.aclose()


def assemble(platform: Platform, master_key: MasterKey) -> Webhooks:
    settings, db, queue, events = platform.settings, platform.db, platform.queue, platform.events
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
        db, queue, platform.broadcaster, poll_seconds=settings.webhook_dispatch_poll_seconds
    )
    return Webhooks(
        service=WebhookService(platform.access, events, guard, master_key, queue),
        dispatcher=dispatcher,
        handler=handler,
        client=client,
        handlers={DELIVER_KIND: handler},
        sealed_tables=[WebhookSecretTable()],
    )
