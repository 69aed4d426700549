"""Managing webhooks over HTTP: both creation forms, secrets, validation, access."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import assert_error
from sqlalchemy import select
from webhook_helpers import ORG, create_webhook, running_app

from fabric_server.access.models import Membership
from fabric_server.events.models import Event
from fabric_server.orgs.models import Organization
from fabric_server.services import Services
from fabric_server.testing import fast_settings

OBJECT_FIELDS = {
    "id",
    "organization_id",
    "url",
    "description",
    "event_filter",
    "events",
    "resource_filter",
    "active",
    "max_retries",
    "created_at",
    "updated_at",
    "disabled_reason",
}


async def events_of(services: Services, kind_prefix: str) -> list[Event]:
    async with services.db.read() as session:
        rows = await session.scalars(
            select(Event).where(Event.kind.startswith(kind_prefix)).order_by(Event.seq)
        )
        return list(rows)


async def add_member(services: Services, org_id: str, role: str) -> str:
    principal = str(uuid.uuid4())
    async with services.db.write() as session:
        session.add(Membership(organization_id=org_id, principal_id=principal, role=role))
    return principal


async def test_create_with_organization_in_the_body_and_a_chosen_secret(
    client: httpx.AsyncClient,
) -> None:
    created = await create_webhook(
        client,
        "https://example.com/hooks",
        events=["workflow.run.completed", "workflow.run.failed"],
        secret="whsec_chosen_by_the_client",
        description="ops alerts",
        resource_filter={"workflow_id": "wf-1"},
        max_retries=7,
    )
    assert set(created) == OBJECT_FIELDS | {"secret"}
    assert created["secret"] == "whsec_chosen_by_the_client"
    assert created["organization_id"] == ORG
    assert (
        created["events"]
        == created["event_filter"]
        == [
            "workflow.run.completed",
            "workflow.run.failed",
        ]
    )
    assert created["resource_filter"] == {"workflow_id": "wf-1"}
    assert created["description"] == "ops alerts"
    assert created["max_retries"] == 7
    assert created["active"] is True
    assert created["disabled_reason"] is None


async def test_create_under_the_organization_path_generates_the_secret(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        f"/v1/organizations/{ORG}/webhooks",
        json={"url": "https://example.com/b", "event_filter": ["job.*"], "max_retries": 5},
    )
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    assert created["secret"].startswith("whsec_")
    assert len(created["secret"]) > 40
    assert created["events"] == created["event_filter"] == ["job.*"]

    # Client B's body: `events`, no secret, no retries.
    response = await client.post(
        f"/v1/organizations/{ORG}/webhooks",
        json={"url": "https://example.com/c", "events": ["job.completed"]},
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["max_retries"] == 5
    other = response.json()["data"]["secret"]
    assert other != created["secret"]


async def test_an_empty_filter_means_every_event(client: httpx.AsyncClient) -> None:
    created = await create_webhook(client, "https://example.com/all")
    assert created["events"] == []
    again = await create_webhook(client, "https://example.com/all2", events=["job.*", "job.*"])
    assert again["events"] == ["job.*"]  # duplicates dropped


async def test_the_secret_is_shown_once(client: httpx.AsyncClient, services: Services) -> None:
    created = await create_webhook(client, "https://example.com/hooks", events=["job.*"])
    secret = created["secret"]
    hook = f"/v1/webhooks/{created['id']}"
    answers = [
        await client.get(hook),
        await client.get(f"/v1/organizations/{ORG}/webhooks"),
        await client.patch(hook, json={"description": "x"}),
        await client.patch(hook, json={"secret": "whsec_rotated_value"}),
    ]
    for response in answers:
        assert response.status_code == 200, response.text
        assert secret not in response.text
        assert "whsec_rotated_value" not in response.text
        assert '"secret"' not in response.text
    for event in await events_of(services, "webhook."):
        assert secret not in json.dumps(event.payload)
        assert "whsec_rotated_value" not in json.dumps(event.payload)


async def test_list_get_update_delete(client: httpx.AsyncClient, services: Services) -> None:
    first = await create_webhook(client, "https://example.com/1", events=["job.completed"])
    second = await create_webhook(client, "https://example.com/2")
    listed = (await client.get(f"/v1/organizations/{ORG}/webhooks")).json()["data"]
    assert [w["id"] for w in listed] == [first["id"], second["id"]]
    assert all(set(w) == OBJECT_FIELDS for w in listed)

    hook = f"/v1/webhooks/{first['id']}"
    got = (await client.get(hook)).json()["data"]
    assert got["url"] == "https://example.com/1"

    response = await client.patch(
        hook,
        json={
            "url": "https://new.example.com/hooks",
            "event_filter": ["workflow.run.*"],
            "description": "new",
            "max_retries": 2,
            "resource_filter": {"job_id": "j-1"},
            "active": False,
        },
    )
    assert response.status_code == 200, response.text
    updated = response.json()["data"]
    assert updated["url"] == "https://new.example.com/hooks"
    assert updated["events"] == updated["event_filter"] == ["workflow.run.*"]
    assert (updated["description"], updated["max_retries"]) == ("new", 2)
    assert updated["resource_filter"] == {"job_id": "j-1"}
    assert updated["active"] is False
    assert updated["updated_at"] > first["updated_at"]

    cleared = (await client.patch(hook, json={"description": None, "events": []})).json()["data"]
    assert cleared["description"] is None
    assert cleared["events"] == []

    response = await client.delete(hook)
    assert response.status_code == 200
    assert response.json()["data"] == {"id": first["id"], "deleted": True}
    assert_error(await client.get(hook), 404, "not_found")
    assert_error(await client.delete(hook), 404, "not_found")

    kinds = [(e.kind, e.payload["webhook_id"]) for e in await events_of(services, "webhook.")]
    assert kinds == [
        ("webhook.created", first["id"]),
        ("webhook.created", second["id"]),
        ("webhook.updated", first["id"]),
        ("webhook.updated", first["id"]),
        ("webhook.deleted", first["id"]),
    ]
    updates = [e.payload for e in await events_of(services, "webhook.updated")]
    assert updates[0]["changed"] == [
        "active",
        "description",
        "events",
        "max_retries",
        "resource_filter",
        "url",
    ]
    assert all(e.organization_id == ORG for e in await events_of(services, "webhook."))


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"url": "ftp://example.com/hooks"}, "url"),
        ({"url": "example.com/hooks"}, "url"),
        ({"url": "https://user:secret@example.com/hooks"}, "url"),
        ({"url": "https://example.com/" + "x" * 2100}, "url"),
        ({"url": "https://example.com", "events": ["Job Completed"]}, "events.0"),
        ({"url": "https://example.com", "events": ["job.*.started"]}, "events.0"),
        ({"url": "https://example.com", "events": ["a"], "event_filter": ["b"]}, "events"),
        ({"url": "https://example.com", "max_retries": 21}, "max_retries"),
        ({"url": "https://example.com", "secret": "short"}, "secret"),
        ({"url": "https://example.com", "resource_filter": {"Bad Key": "x"}}, "resource_filter"),
        ({"url": "https://example.com", "colour": "blue"}, "colour"),
    ],
)
async def test_invalid_bodies_are_refused(
    client: httpx.AsyncClient, body: dict[str, Any], path: str
) -> None:
    response = await client.post("/v1/webhooks", json={"organization_id": ORG, **body})
    # Both lists given but different: well-formed, refused by a rule beyond the schema.
    status = 422 if "event_filter" in body else 400
    error = assert_error(response, status, "validation_failed")["error"]
    assert any(e["path"].startswith(path) for e in error["details"]["errors"]), error


async def test_update_refuses_nulls_and_bad_urls(client: httpx.AsyncClient) -> None:
    created = await create_webhook(client, "https://example.com/1")
    hook = f"/v1/webhooks/{created['id']}"
    assert_error(await client.patch(hook, json={"url": None}), 400, "validation_failed")
    assert_error(await client.patch(hook, json={"active": None}), 400, "validation_failed")
    assert_error(await client.patch(hook, json={"url": "gopher://x"}), 400, "validation_failed")
    assert_error(await client.patch(hook, json={"nope": 1}), 400, "validation_failed")
    assert (await client.get(hook)).json()["data"]["url"] == "https://example.com/1"


@pytest.fixture
async def strict(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Dev conveniences, but private targets refused as in production."""
    settings = fast_settings(database_url, tmp_path, webhook_allow_private=False)
    async with running_app(settings) as (client, _):
        yield client


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "http://localhost:3000/hooks",
        "http://10.0.0.7/hooks",
        "http://192.168.1.20/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://[fe80::1]/hooks",
        "http://224.0.0.1/hooks",
        "http://0.0.0.0/hooks",
        "http://2130706433/hooks",
    ],
)
async def test_private_targets_are_refused_when_not_allowed(
    strict: httpx.AsyncClient, url: str
) -> None:
    response = await strict.post("/v1/webhooks", json={"organization_id": ORG, "url": url})
    # A well-formed URL refused by the address policy: a rule beyond the schema (422).
    error = assert_error(response, 422, "validation_failed")["error"]
    assert error["details"]["errors"][0]["path"] == "url"
    assert "not allowed" in error["message"]


async def test_public_targets_are_accepted_when_private_ones_are_not(
    strict: httpx.AsyncClient,
) -> None:
    created = await create_webhook(strict, "https://hooks.example.com/in")
    response = await strict.patch(
        f"/v1/webhooks/{created['id']}", json={"url": "http://172.16.0.1/x"}
    )
    assert_error(response, 422, "validation_failed")


async def test_private_targets_are_accepted_in_dev_mode(client: httpx.AsyncClient) -> None:
    created = await create_webhook(client, "http://127.0.0.1:9/hooks")
    assert created["url"] == "http://127.0.0.1:9/hooks"


async def test_other_organizations_webhooks_are_not_found(
    client: httpx.AsyncClient, services: Services
) -> None:
    async with services.db.write() as session:
        org = Organization(slug="other", name="Other")
        session.add(org)
        await session.flush()
        other_org = org.id
    outsider = await add_member(services, other_org, "owner")
    theirs = {"x-principal-id": outsider}
    response = await client.post(
        f"/v1/organizations/{other_org}/webhooks",
        json={"url": "https://example.com/theirs"},
        headers=theirs,
    )
    assert response.status_code == 201, response.text
    hook = f"/v1/webhooks/{response.json()['data']['id']}"

    # The dev owner is not a member of that organization: everything is 404.
    assert_error(await client.get(hook), 404, "not_found")
    assert_error(await client.patch(hook, json={"active": False}), 404, "not_found")
    assert_error(await client.delete(hook), 404, "not_found")
    assert_error(await client.get(f"{hook}/deliveries"), 404, "not_found")
    assert_error(await client.get(f"/v1/organizations/{other_org}/webhooks"), 404, "not_found")
    response = await client.post(
        "/v1/webhooks", json={"organization_id": other_org, "url": "https://example.com/x"}
    )
    assert_error(response, 404, "not_found")
    assert (await client.get(hook, headers=theirs)).status_code == 200


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_managing_webhooks_needs_admin(
    client: httpx.AsyncClient, services: Services, role: str
) -> None:
    ours = await create_webhook(client, "https://example.com/ours")
    caller = {"x-principal-id": await add_member(services, ORG, role)}
    body = {"organization_id": ORG, "url": "https://example.com/x"}
    assert_error(await client.post("/v1/webhooks", json=body, headers=caller), 403, "forbidden")
    hook = f"/v1/webhooks/{ours['id']}"
    assert_error(await client.get(hook, headers=caller), 403, "forbidden")
    assert_error(
        await client.get(f"/v1/organizations/{ORG}/webhooks", headers=caller), 403, "forbidden"
    )
    assert_error(await client.delete(hook, headers=caller), 403, "forbidden")


async def test_unknown_webhook_and_bad_cursor(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(f"/v1/webhooks/{uuid.uuid4()}"), 404, "not_found")
    created = await create_webhook(client, "https://example.com/x")
    response = await client.get(f"/v1/webhooks/{created['id']}/deliveries?cursor=nope")
    assert_error(response, 422, "invalid_cursor")
    empty = await client.get(f"/v1/webhooks/{created['id']}/deliveries")
    assert empty.json()["data"] == {"items": [], "next_cursor": None}
