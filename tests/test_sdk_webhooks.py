"""The SDK's webhook surface against a real server, and verifying a real delivery with it."""

from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

import pytest
from webhook_receiver import Receiver

from fabric_platform import (
    AsyncFabricClient,
    FabricClient,
    FabricNotFoundError,
    FabricSignatureError,
    FabricValidationError,
)
from fabric_platform.webhooks import construct_event, verify_signature
from fabric_server.testing import LiveServer

T = TypeVar("T")
org = {"id": "00000000-0000-0000-0000-000000000010"}


def wait_until(probe: Callable[[], T], check: Callable[[T], bool], timeout: float = 20) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if check(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.02)


def test_spec_webhooks_snippet(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        webhook = fabric.create_webhook(
            org["id"],
            url="https://example.com/hooks",
            events=["workflow.run.completed", "workflow.run.failed"],
            secret="whsec_...",
        )

        webhooks = fabric.list_webhooks(org["id"])
        fabric.update_webhook(webhook["id"], url="https://new.example.com/hooks")
        fabric.delete_webhook(webhook["id"])

        assert webhook["secret"] == "whsec_..."
        assert [w["id"] for w in webhooks] == [webhook["id"]]
        assert "secret" not in webhooks[0]
        assert fabric.list_webhooks(org["id"]) == []
        with pytest.raises(FabricNotFoundError):
            fabric.get_webhook(webhook["id"])


def test_a_real_delivery_verifies_with_the_sdk_helpers(server: LiveServer) -> None:
    with Receiver() as receiver, FabricClient(base_url=server.base_url) as fabric:
        webhook = fabric.create_webhook(org["id"], receiver.url, ["job.completed"])
        secret = webhook["secret"]
        assert secret.startswith("whsec_")
        job = fabric.create_job(modality="text", input={"prompt": "signed"})
        page = wait_until(
            lambda: fabric.list_webhook_deliveries(webhook["id"]),
            lambda p: any(d["status"] == "succeeded" for d in p["items"]),
        )

    (request,) = receiver.requests
    event = construct_event(request.body, request.headers, secret)
    assert event["kind"] == "job.completed"
    assert event["job_id"] == job["id"]
    assert event["payload"]["output"]["text"] == "signed"
    assert verify_signature(request.body, request.headers["x-fabric-signature"], secret)
    with pytest.raises(FabricSignatureError):
        construct_event(request.body, request.headers, "whsec_not_the_secret")
    with pytest.raises(FabricSignatureError):
        construct_event(request.body + b" ", request.headers, secret)

    (delivery,) = page["items"]
    assert delivery["delivery_id"] == request.headers["x-fabric-delivery"]
    assert delivery["event_id"] == event["id"]
    assert (delivery["attempt"], delivery["status_code"]) == (1, 200)


def test_a_delivery_is_sent_again_on_request(server: LiveServer) -> None:
    with Receiver() as receiver, FabricClient(base_url=server.base_url) as fabric:
        webhook = fabric.create_webhook(org["id"], receiver.url, ["job.completed"])
        fabric.create_job(modality="text", input={"prompt": "again"})
        (first,) = wait_until(
            lambda: list(fabric.iter_webhook_deliveries(webhook["id"])),
            lambda items: [d["status"] for d in items] == ["succeeded"],
        )
        again = fabric.redeliver_webhook_delivery(webhook["id"], first["delivery_id"])
        assert (again["delivery_id"], again["attempt"]) == (first["delivery_id"], 2)
        wait_until(lambda: len(receiver.requests), lambda n: n == 2)
        with pytest.raises(FabricNotFoundError):
            fabric.redeliver_webhook_delivery(webhook["id"], "00000000-0000-0000-0000-0000000000ff")
    assert receiver.requests[0].body == receiver.requests[1].body


def test_bad_webhook_urls_raise_validation_errors(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        with pytest.raises(FabricValidationError) as error:
            fabric.create_webhook(org["id"], "ftp://example.com/hooks", [])
        assert error.value.code == "validation_failed"
        assert error.value.details is not None
        assert error.value.details["errors"][0]["path"] == "url"


async def test_async_client_twin(server: LiveServer) -> None:
    async with AsyncFabricClient(base_url=server.base_url) as fabric:
        created = await fabric.create_webhook(org["id"], "https://example.com/a", ["job.*"])
        updated = await fabric.update_webhook(created["id"], active=False, events=[])
        assert (updated["active"], updated["events"]) == (False, [])
        listed: list[Any] = await fabric.list_webhooks(org["id"])
        assert [w["id"] for w in listed] == [created["id"]]
        page = await fabric.list_webhook_deliveries(created["id"], limit=5)
        assert page == {"items": [], "next_cursor": None}
        assert (await fabric.delete_webhook(created["id"]))["deleted"] is True
