"""Webhook management methods (wire-spec §9.15): paths, bodies, return values, both clients."""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx
import pytest

from fabric_platform import AsyncFabricClient, FabricClient, FabricNotFoundError, FabricServerError

from .helpers import Script, fail, ok

MakeClient = Callable[..., FabricClient]
MakeAsyncClient = Callable[..., AsyncFabricClient]
ORG = "org-1"


def webhook(**fields: Any) -> dict[str, Any]:
    return {"id": "wh-1", "organization_id": ORG, "url": "https://example.com/hooks", **fields}


def body(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


def test_create_webhook_as_in_the_spec(make_client: MakeClient) -> None:
    script = Script(ok(webhook(secret="whsec_..."), status=201))
    client = make_client(script)

    created = client.create_webhook(
        ORG,
        url="https://example.com/hooks",
        events=["workflow.run.completed", "workflow.run.failed"],
        secret="whsec_...",
    )

    assert created["secret"] == "whsec_..."
    assert (script.last.method, script.last.url.path) == ("POST", "/v1/webhooks")
    assert body(script.last) == {
        "organization_id": ORG,
        "url": "https://example.com/hooks",
        "events": ["workflow.run.completed", "workflow.run.failed"],
        "secret": "whsec_...",
    }


def test_create_webhook_without_secret_and_with_extras(make_client: MakeClient) -> None:
    script = Script(ok(webhook(), status=201))
    client = make_client(script)

    client.create_webhook(
        ORG,
        "https://example.com/hooks",
        "job.completed",
        description="ops",
        resource_filter={"job_id": "j"},
        max_retries=2,
    )

    assert body(script.last) == {
        "organization_id": ORG,
        "url": "https://example.com/hooks",
        "events": ["job.completed"],
        "description": "ops",
        "resource_filter": {"job_id": "j"},
        "max_retries": 2,
    }


def test_create_webhook_is_not_retried_without_an_idempotency_key(
    make_client: MakeClient,
) -> None:
    script = Script(fail(503, "unavailable"))
    client = make_client(script)

    with pytest.raises(FabricServerError):
        client.create_webhook(ORG, "https://example.com/hooks", [])
    assert len(script.requests) == 1


def test_list_update_delete_and_deliveries(make_client: MakeClient) -> None:
    page = {"items": [{"id": "a-1", "attempt": 1, "status": "succeeded"}], "next_cursor": "c2"}
    script = Script(
        ok([webhook()]),
        ok(webhook(url="https://new.example.com/hooks")),
        ok(webhook()),
        ok({"id": "wh-1", "deleted": True}),
        ok(page),
    )
    client = make_client(script)

    assert [w["id"] for w in client.list_webhooks(ORG)] == ["wh-1"]
    updated = client.update_webhook("wh-1", url="https://new.example.com/hooks", active=False)
    assert updated["url"] == "https://new.example.com/hooks"
    assert client.get_webhook("wh-1")["id"] == "wh-1"
    assert client.delete_webhook("wh-1") == {"id": "wh-1", "deleted": True}
    assert client.list_webhook_deliveries("wh-1", limit=10, cursor="c1") == page

    calls = [(r.method, r.url.path, r.url.query.decode()) for r in script.requests]
    assert calls == [
        ("GET", f"/v1/organizations/{ORG}/webhooks", ""),
        ("PATCH", "/v1/webhooks/wh-1", ""),
        ("GET", "/v1/webhooks/wh-1", ""),
        ("DELETE", "/v1/webhooks/wh-1", ""),
        ("GET", "/v1/webhooks/wh-1/deliveries", "limit=10&cursor=c1"),
    ]
    assert body(script.requests[1]) == {"url": "https://new.example.com/hooks", "active": False}


def test_ids_are_escaped_in_paths(make_client: MakeClient) -> None:
    script = Script(ok([]))
    client = make_client(script)

    client.list_webhooks("org/../x")

    assert script.last.url.raw_path == b"/v1/organizations/org%2F..%2Fx/webhooks"


def test_unknown_webhook_raises_not_found(make_client: MakeClient) -> None:
    client = make_client(Script(fail(404, "not_found", "Webhook x was not found.")))

    with pytest.raises(FabricNotFoundError):
        client.delete_webhook("x")


async def test_async_twin(make_async_client: MakeAsyncClient) -> None:
    script = Script(
        ok(webhook(secret="whsec_generated"), status=201),
        ok([webhook()]),
        ok(webhook(active=False)),
        ok({"id": "wh-1", "deleted": True}),
        ok({"items": [], "next_cursor": None}),
    )
    client = make_async_client(script)

    created = await client.create_webhook(ORG, "https://example.com/hooks", ["job.*"])
    assert created["secret"] == "whsec_generated"
    assert len(await client.list_webhooks(ORG)) == 1
    assert (await client.update_webhook("wh-1", active=False))["active"] is False
    assert (await client.delete_webhook("wh-1"))["deleted"] is True
    assert (await client.list_webhook_deliveries("wh-1"))["items"] == []

    assert body(script.requests[0]) == {
        "organization_id": ORG,
        "url": "https://example.com/hooks",
        "events": ["job.*"],
    }
    assert script.requests[-1].url.query == b"limit=50"
