"""Webhooks: endpoints that receive signed copies of an organization's events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional, cast

from ._base import QueryValue, encode_path, query
from ._core import AsyncClientCore, SyncClientCore
from .types import DeletedWebhook, Webhook, WebhookDeliveryPage


def _create_body(
    org_id: str,
    url: str,
    events: Sequence[str],
    secret: Optional[str],
    description: Optional[str],
    resource_filter: Optional[Mapping[str, str]],
    max_retries: Optional[int],
) -> dict[str, Any]:
    if isinstance(events, str):  # a lone kind, not a sequence of one-letter kinds
        events = [events]
    body: dict[str, Any] = {"organization_id": org_id, "url": url, "events": list(events)}
    optional: dict[str, Any] = {
        "secret": secret,
        "description": description,
        "resource_filter": dict(resource_filter) if resource_filter is not None else None,
        "max_retries": max_retries,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


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
        events: Sequence[str],
        secret: Optional[str] = None,
        *,
        description: Optional[str] = None,
        resource_filter: Optional[Mapping[str, str]] = None,
        max_retries: Optional[int] = None,
    ) -> Webhook:
        """Subscribe ``url`` to the organization's events and return the webhook.

        ``events`` holds event kinds (``"job.completed"``) or prefix wildcards
        (``"workflow.run.*"``); an empty list means every event. Without a ``secret`` the
        server generates one. The answer's ``secret`` is shown this once: keep it to verify
        deliveries (`fabric_platform.webhooks`).
        """
        body = _create_body(org_id, url, events, secret, description, resource_filter, max_retries)
        return cast(Webhook, self._request("POST", "/v1/webhooks", body=body))

    def list_webhooks(self, org_id: str) -> list[Webhook]:
        """Every webhook of the organization (secrets are never included)."""
        return cast("list[Webhook]", self._request("GET", _org_path(org_id)))

    def get_webhook(self, webhook_id: str) -> Webhook:
        """The webhook ``webhook_id``; raises `FabricNotFoundError` if it is not visible."""
        return cast(Webhook, self._request("GET", _webhook_path(webhook_id)))

    def update_webhook(self, webhook_id: str, **fields: Any) -> Webhook:
        """Change any of ``url``, ``events``, ``active``, ``description``, ``max_retries``,
        ``resource_filter``, ``secret``; ``active=True`` re-enables a disabled webhook."""
        return cast(Webhook, self._request("PATCH", _webhook_path(webhook_id), body=fields))

    def delete_webhook(self, webhook_id: str) -> DeletedWebhook:
        """Delete the webhook and its delivery history: ``{"id": …, "deleted": True}``."""
        return cast(DeletedWebhook, self._request("DELETE", _webhook_path(webhook_id)))

    def list_webhook_deliveries(
        self, webhook_id: str, limit: int = 50, cursor: Optional[str] = None
    ) -> WebhookDeliveryPage:
        """One page of delivery attempts, newest first: ``{"items", "next_cursor"}``."""
        path = _webhook_path(webhook_id, "/deliveries")
        params = _deliveries_params(limit, cursor)
        return cast(WebhookDeliveryPage, self._request("GET", path, params=params))


class AsyncWebhooksMethods(AsyncClientCore):
    async def create_webhook(
        self,
        org_id: str,
        url: str,
        events: Sequence[str],
        secret: Optional[str] = None,
        *,
        description: Optional[str] = None,
        resource_filter: Optional[Mapping[str, str]] = None,
        max_retries: Optional[int] = None,
    ) -> Webhook:
        """Subscribe ``url`` to the organization's events; see `FabricClient.create_webhook`."""
        body = _create_body(org_id, url, events, secret, description, resource_filter, max_retries)
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
