"""Webhooks: endpoints that receive signed copies of an organization's events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Optional, cast

from ._base import QueryValue, encode_path, query
from ._core import AsyncClientCore, SyncClientCore
from ._paging import aiterate_pages, iterate_pages
from .types import DeletedWebhook, Webhook, WebhookDelivery, WebhookDeliveryPage


def _create_body(
    org_id: str,
    url: str,
    events: Optional[Sequence[str]],
    secret: Optional[str],
    description: Optional[str],
    resource_filter: Optional[Mapping[str, str]],
    max_retries: Optional[int],
    active: Optional[bool],
) -> dict[str, Any]:
    if isinstance(events, str):  # a lone kind, not a sequence of one-letter kinds
        events = [events]
    body: dict[str, Any] = {"organization_id": org_id, "url": url}
    optional: dict[str, Any] = {
        # Absent (like empty): every event.
        "events": list(events) if events is not None else None,
        "secret": secret,
        "description": description,
        "resource_filter": dict(resource_filter) if resource_filter is not None else None,
        "max_retries": max_retries,
        "active": active,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


_REDELIVER = "/v1/webhooks/{}/deliveries/{}/redeliver"


def _webhook_path(webhook_id: str, suffix: str = "") -> str:
    return encode_path("/v1/webhooks/{}" + suffix, webhook_id)


def _org_path(org_id: str) -> str:
    return encode_path("/v1/organizations/{}/webhooks", org_id)


def _deliveries_params(limit: int, cursor: Optional[str]) -> dict[str, QueryValue]:
    return query(limit=limit, cursor=cursor)


class WebhooksMethods(SyncClientCore):
    def create_webhook(
        self,
        org_id: str,
        url: str,
        events: Optional[Sequence[str]] = None,
        secret: Optional[str] = None,
        *,
        description: Optional[str] = None,
        resource_filter: Optional[Mapping[str, str]] = None,
        max_retries: Optional[int] = None,
        active: Optional[bool] = None,
    ) -> Webhook:
        """Subscribe ``url`` to the organization's events and return the webhook.

        ``events`` holds event kinds (``"job.completed"``) or prefix wildcards
        (``"workflow.run.*"``); none (or an empty list) means every event. Without a
        ``secret`` the server generates one. The answer's ``secret`` is shown this once: keep
        it to verify deliveries (`fabric_platform.webhooks`). ``resource_filter`` keeps only
        events whose field equals the value (e.g. ``{"workflow_id": wf_id}``);
        ``max_retries`` (default 5) bounds redelivery; ``active=False`` creates it paused.
        """
        body = _create_body(
            org_id, url, events, secret, description, resource_filter, max_retries, active
        )
        return cast(Webhook, self._request("POST", "/v1/webhooks", body=body))

    def list_webhooks(self, org_id: str) -> list[Webhook]:
        """Every webhook of the organization (secrets are never included)."""
        return cast("list[Webhook]", self._request("GET", _org_path(org_id)))

    def get_webhook(self, webhook_id: str) -> Webhook:
        """The webhook ``webhook_id``; raises `FabricNotFoundError` if it is not visible."""
        return cast(Webhook, self._request("GET", _webhook_path(webhook_id)))

    def update_webhook(self, webhook_id: str, **fields: Any) -> Webhook:
        """Change any of ``url``, ``events`` (or its other name ``event_filter``), ``active``,
        ``description``, ``max_retries``, ``resource_filter``, ``secret``; ``active=True``
        re-enables a disabled webhook."""
        return cast(Webhook, self._request("PATCH", _webhook_path(webhook_id), body=fields))

    def delete_webhook(self, webhook_id: str) -> DeletedWebhook:
        """Delete the webhook and its delivery history: ``{"id": …, "deleted": True}``."""
        return cast(DeletedWebhook, self._request("DELETE", _webhook_path(webhook_id)))

    def list_webhook_deliveries(
        self, webhook_id: str, limit: int = 50, cursor: Optional[str] = None
    ) -> WebhookDeliveryPage:
        """One page of delivery attempts, newest first: ``{"items", "next_cursor"}``;
        `iter_webhook_deliveries` walks every page."""
        path = _webhook_path(webhook_id, "/deliveries")
        params = _deliveries_params(limit, cursor)
        return cast(WebhookDeliveryPage, self._request("GET", path, params=params))

    def redeliver_webhook_delivery(self, webhook_id: str, delivery_id: str) -> WebhookDelivery:
        """Send a finished delivery again: the same body under the same delivery id, as one
        more attempt (not retried if it fails). Returns that attempt, ``pending``; a delivery
        still pending or retrying raises `FabricConflictError`."""
        path = encode_path(_REDELIVER, webhook_id, delivery_id)
        return cast(WebhookDelivery, self._request("POST", path, body={}))

    def iter_webhook_deliveries(
        self, webhook_id: str, *, page_size: int = 50
    ) -> Iterator[WebhookDelivery]:
        """Every delivery attempt of the webhook, newest first, fetching pages as needed."""
        yield from iterate_pages(
            lambda cursor: self.list_webhook_deliveries(webhook_id, page_size, cursor)
        )


class AsyncWebhooksMethods(AsyncClientCore):
    async def create_webhook(
        self,
        org_id: str,
        url: str,
        events: Optional[Sequence[str]] = None,
        secret: Optional[str] = None,
        *,
        description: Optional[str] = None,
        resource_filter: Optional[Mapping[str, str]] = None,
        max_retries: Optional[int] = None,
        active: Optional[bool] = None,
    ) -> Webhook:
        """Subscribe ``url`` to the organization's events; see `FabricClient.create_webhook`."""
        body = _create_body(
            org_id, url, events, secret, description, resource_filter, max_retries, active
        )
        return cast(Webhook, await self._request("POST", "/v1/webhooks", body=body))

    async def list_webhooks(self, org_id: str) -> list[Webhook]:
        """Every webhook of the organization (secrets are never included)."""
        return cast("list[Webhook]", await self._request("GET", _org_path(org_id)))

    async def get_webhook(self, webhook_id: str) -> Webhook:
        """The webhook ``webhook_id``; raises `FabricNotFoundError` if it is not visible."""
        return cast(Webhook, await self._request("GET", _webhook_path(webhook_id)))

    async def update_webhook(self, webhook_id: str, **fields: Any) -> Webhook:
        """Change fields of the webhook; see `FabricClient.update_webhook`."""
        path = _webhook_path(webhook_id)
        return cast(Webhook, await self._request("PATCH", path, body=fields))

    async def delete_webhook(self, webhook_id: str) -> DeletedWebhook:
        """Delete the webhook and its delivery history: ``{"id": …, "deleted": True}``."""
        return cast(DeletedWebhook, await self._request("DELETE", _webhook_path(webhook_id)))

    async def list_webhook_deliveries(
        self, webhook_id: str, limit: int = 50, cursor: Optional[str] = None
    ) -> WebhookDeliveryPage:
        """One page of delivery attempts, newest first: ``{"items", "next_cursor"}``."""
        path = _webhook_path(webhook_id, "/deliveries")
        params = _deliveries_params(limit, cursor)
        return cast(WebhookDeliveryPage, await self._request("GET", path, params=params))

    async def redeliver_webhook_delivery(
        self, webhook_id: str, delivery_id: str
    ) -> WebhookDelivery:
        """Send a finished delivery again (see `FabricClient.redeliver_webhook_delivery`)."""
        path = encode_path(_REDELIVER, webhook_id, delivery_id)
        return cast(WebhookDelivery, await self._request("POST", path, body={}))

    async def iter_webhook_deliveries(
        self, webhook_id: str, *, page_size: int = 50
    ) -> AsyncIterator[WebhookDelivery]:
        """Every delivery attempt of the webhook (``async for``), fetching pages as needed."""
        pages = aiterate_pages(
            lambda cursor: self.list_webhook_deliveries(webhook_id, page_size, cursor)
        )
        async for delivery in pages:
            yield delivery
