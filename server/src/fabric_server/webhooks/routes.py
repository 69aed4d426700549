"""HTTP routes for webhooks: both creation forms the clients send, management, history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.api.pagination import CursorQuery
from fabric_server.audit.actions import audited
from fabric_server.paging import MAX_LIMIT, encode_cursor, page_request
from fabric_server.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from fabric_server.webhooks.schemas import (
    DeliveryAttemptOut,
    DeliveryPage,
    OrgWebhookCreate,
    WebhookCreate,
    WebhookCreated,
    WebhookDeleted,
    WebhookOut,
    WebhookUpdate,
)

router = APIRouter(tags=["webhooks"], responses=ERROR_RESPONSES)


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=Envelope[WebhookCreated],
    summary="Create a webhook (`organization_id` in the body); the secret is returned once",
)
@audited("webhook.create")
async def create_webhook(
    body: WebhookCreate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        webhook, secret = await services.webhooks.service.create(
            session, principal, body.organization_id, body
        )
        data = WebhookCreated(**webhook_out(webhook).model_dump(), secret=secret)
    return ok(request, data, 201)


@router.post(
    "/v1/organizations/{organization_id}/webhooks",
    status_code=201,
    response_model=Envelope[WebhookCreated],
    summary="Create a webhook of an organization; the secret is returned once",
)
@audited("org_webhook.create")
async def create_org_webhook(
    organization_id: str,
    body: OrgWebhookCreate,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    async with services.db.write() as session:
        webhook, secret = await services.webhooks.service.create(
            session, principal, organization_id, body
        )
        data = WebhookCreated(**webhook_out(webhook).model_dump(), secret=secret)
    return ok(request, data, 201)


@router.get(
    "/v1/organizations/{organization_id}/webhooks",
    response_model=Envelope[list[WebhookOut]],
    summary="List an organization's webhooks",
)
async def list_webhooks(
    organization_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        rows = await services.webhooks.service.list_for(session, principal, organization_id)
        return ok(request, [webhook_out(w) for w in rows])


@router.get("/v1/webhooks/{webhook_id}", response_model=Envelope[WebhookOut], summary="Get one")
async def get_webhook(
    webhook_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        webhook = await services.webhooks.service.get(session, principal, webhook_id)
        return ok(request, webhook_out(webhook))


@router.patch(
    "/v1/webhooks/{webhook_id}",
    response_model=Envelope[WebhookOut],
    summary="Change a webhook (`active: true` re-enables a disabled one)",
)
@audited("webhook.update")
async def update_webhook(
    webhook_id: str,
    body: WebhookUpdate,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    async with services.db.write() as session:
        webhook = await services.webhooks.service.update(session, principal, webhook_id, body)
        data = webhook_out(webhook)
    return ok(request, data)


@router.delete(
    "/v1/webhooks/{webhook_id}",
    response_model=Envelope[WebhookDeleted],
    summary="Delete a webhook and its delivery history",
)
@audited("webhook.delete")
async def delete_webhook(
    webhook_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        await services.webhooks.service.delete(session, principal, webhook_id)
    return ok(request, WebhookDeleted(id=webhook_id, deleted=True))


@router.post(
    "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=Envelope[DeliveryAttemptOut],
    summary="Send a finished delivery again (same body and delivery id, one attempt)",
)
@audited("webhook_delivery.redeliver")
async def redeliver_webhook_delivery(
    webhook_id: str,
    delivery_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    async with services.db.write() as session:
        attempt, delivery = await services.webhooks.service.redeliver(
            session, principal, webhook_id, delivery_id
        )
        body = attempt_out(attempt, delivery)
    return ok(request, body, status=202)


@router.get(
    "/v1/webhooks/{webhook_id}/deliveries",
    response_model=Envelope[DeliveryPage],
    summary="Delivery attempts of a webhook, newest first",
)
async def list_deliveries(
    webhook_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: CursorQuery = None,
) -> JSONResponse:
    page = page_request(limit, cursor)
    async with services.db.read() as session:
        rows, last = await services.webhooks.service.attempts(session, principal, webhook_id, page)
        items = [attempt_out(attempt, delivery) for attempt, delivery in rows]
    return ok(request, DeliveryPage(items=items, next_cursor=encode_cursor(last) if last else None))


def webhook_out(webhook: Webhook) -> WebhookOut:
    return WebhookOut(
        id=webhook.id,
        organization_id=webhook.organization_id,
        url=webhook.url,
        description=webhook.description,
        event_filter=list(webhook.event_filter),
        events=list(webhook.event_filter),
        resource_filter=webhook.resource_filter,
        active=webhook.active,
        max_retries=webhook.max_retries,
        created_at=webhook.created_at,
        updated_at=webhook.updated_at,
        disabled_reason=webhook.disabled_reason,
    )


def attempt_out(attempt: WebhookAttempt, delivery: WebhookDelivery) -> DeliveryAttemptOut:
    return DeliveryAttemptOut(
        id=attempt.id,
        delivery_id=delivery.id,
        webhook_id=attempt.webhook_id,
        event_id=delivery.event_id,
        event_kind=delivery.event_kind,
        attempt=attempt.attempt,
        status=attempt.status,
        status_code=attempt.status_code,
        latency_ms=attempt.latency_ms,
        response_body=attempt.response_body,
        error=attempt.error,
        error_message=attempt.error,
        next_retry_at=attempt.next_retry_at,
        created_at=attempt.created_at,
        completed_at=attempt.completed_at,
    )
