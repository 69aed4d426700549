"""Tenant isolation, from the app's own route table.

Every route with an id in its path must be listed in `MATRIX` (or in `PUBLIC`): how to fill
in organization A's ids, and what a member of organization B gets when using them — 404, as
if the thing did not exist, unless a different answer is documented. Adding a route without
an entry here makes `test_every_route_with_an_id_is_in_the_matrix` fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from tenancy_helpers import create_org, data, verified_user

from fabric_server.app import create_app
from fabric_server.db.types import new_id
from fabric_server.engine.models import WorkItem
from fabric_server.services import Services
from fabric_server.settings import Settings
from fabric_server.webhooks.models import WebhookDelivery


@dataclass(frozen=True)
class Case:
    expected: int
    body: dict[str, Any] | None = None
    why: str = "another organization's resource is not found"


MATRIX: dict[tuple[str, str], Case] = {
    ("GET", "/v1/jobs/{job_id}"): Case(404),
    ("GET", "/v1/jobs/{job_id}/usage"): Case(404),
    ("GET", "/v1/jobs/{job_id}/events"): Case(404),
    ("GET", "/v1/organizations/{org_id}"): Case(404),
    ("PATCH", "/v1/organizations/{org_id}"): Case(404, body={"name": "Stolen"}),
    ("POST", "/v1/organizations/{org_id}/archive"): Case(404),
    ("POST", "/v1/organizations/{org_id}/unarchive"): Case(404),
    ("GET", "/v1/organizations/{org_id}/members"): Case(404),
    ("PATCH", "/v1/organizations/{org_id}/members/{principal_id}"): Case(
        404, body={"role": "viewer"}
    ),
    ("DELETE", "/v1/organizations/{org_id}/members/{principal_id}"): Case(404),
    ("GET", "/v1/organizations/{org_id}/teams"): Case(404),
    ("GET", "/v1/teams/{team_id}"): Case(404),
    ("GET", "/v1/invitations/{invitation_id}"): Case(404),
    ("POST", "/v1/invitations/{invitation_id}/revoke"): Case(404),
    ("POST", "/v1/invitations/{invitation_id}/accept"): Case(
        403, why="documented: only the invited (verified) address may accept"
    ),
    ("DELETE", "/v1/permissions/{grant_id}"): Case(404),
    ("GET", "/v1/api-keys/{key_id}"): Case(404),
    ("POST", "/v1/api-keys/{key_id}/rotate"): Case(404),
    ("POST", "/v1/api-keys/{key_id}/disable"): Case(404),
    ("DELETE", "/v1/api-keys/{key_id}"): Case(404),
    ("POST", "/v1/organizations/{org_id}/secrets"): Case(
        404, body={"name": "STOLEN", "value": "x"}
    ),
    ("GET", "/v1/organizations/{org_id}/secrets"): Case(404),
    ("DELETE", "/v1/organizations/{org_id}/secrets/{name}"): Case(404),
    ("GET", "/v1/organizations/{org_id}/audit-logs"): Case(404),
    ("GET", "/v1/organizations/{org_id}/usage"): Case(404),
    ("GET", "/v1/workflow-definitions/{definition_id}/schedules"): Case(404),
    ("POST", "/v1/workflow-definitions/{definition_id}/schedules"): Case(
        404, body={"cron_expression": "0 9 * * 1-5"}
    ),
    ("GET", "/v1/schedules/{schedule_id}"): Case(404),
    ("GET", "/v1/schedules/{schedule_id}/history"): Case(404),
    ("PATCH", "/v1/schedules/{schedule_id}"): Case(404, body={"enabled": False}),
    ("POST", "/v1/schedules/{schedule_id}/trigger"): Case(404, body={}),
    ("DELETE", "/v1/schedules/{schedule_id}"): Case(404),
    ("GET", "/v1/organizations/{organization_id}/webhooks"): Case(404),
    ("POST", "/v1/organizations/{organization_id}/webhooks"): Case(
        404, body={"url": "http://127.0.0.1:9/hook", "events": []}
    ),
    ("GET", "/v1/webhooks/{webhook_id}"): Case(404),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): Case(404),
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): Case(404),
    ("PATCH", "/v1/webhooks/{webhook_id}"): Case(404, body={"active": False}),
    ("DELETE", "/v1/webhooks/{webhook_id}"): Case(404),
    ("GET", "/v1/organizations/{org_id}/limits"): Case(404),
    ("PUT", "/v1/organizations/{org_id}/limits"): Case(404, body={"max_active_jobs": 1}),
    ("GET", "/v1/workers/{worker_id}"): Case(404),
    ("DELETE", "/v1/workers/{worker_id}"): Case(404),
    ("POST", "/v1/workers/{worker_id}/tasks/poll"): Case(
        404, body={"capacity": {"acme.step": 1}, "wait_seconds": 0}
    ),
    ("POST", "/v1/workers/{worker_id}/heartbeat"): Case(404, body={"tasks": []}),
    ("POST", "/v1/workers/{worker_id}/tasks/{task_id}/complete"): Case(
        404, body={"attempt": 1, "output": {}}
    ),
    ("POST", "/v1/workers/{worker_id}/tasks/{task_id}/fail"): Case(
        404, body={"attempt": 1, "error": "e"}
    ),
    ("POST", "/v1/workers/{worker_id}/tasks/{task_id}/progress"): Case(
        404, body={"attempt": 1, "progress": 0.5}
    ),
    ("POST", "/v1/workers/{worker_id}/tasks/{task_id}/log"): Case(
        404, body={"attempt": 1, "message": "m"}
    ),
    ("GET", "/v1/organizations/{org_id}/usage/daily"): Case(404),
    ("GET", "/v1/organizations/{org_id}/usage/records"): Case(404),
    ("GET", "/v1/organizations/{org_id}/usage/spending"): Case(404),
    ("GET", "/v1/organizations/{org_id}/budget"): Case(404),
    ("PUT", "/v1/organizations/{org_id}/budget"): Case(404, body={"monthly_limit_usd": 0}),
    ("GET", "/v1/galleries/{gallery_id}"): Case(404),
    ("GET", "/v1/galleries/{gallery_id}/items"): Case(404),
    ("POST", "/v1/galleries/{gallery_id}/items"): Case(404, body={"url": "https://example.com/x"}),
    ("DELETE", "/v1/gallery-items/{item_id}"): Case(404),
    ("DELETE", "/v1/galleries/{gallery_id}"): Case(404),
    ("GET", "/v1/workflow-definitions/{definition_id}"): Case(404),
    ("GET", "/v1/workflow-runs/{run_id}"): Case(404),
    ("GET", "/v1/workflows/runs/{run_id}"): Case(404),
    ("GET", "/v1/workflow-runs/{run_id}/children"): Case(404),
    ("GET", "/v1/workflow-runs/{run_id}/events"): Case(404),
    ("GET", "/v1/workflow-runs/{run_id}/log"): Case(404),
    ("POST", "/v1/workflow-runs/{run_id}/start"): Case(404, body={}),
    ("POST", "/v1/workflow-runs/{run_id}/cancel"): Case(404, body={}),
    ("POST", "/v1/workflows/runs/{run_id}/cancel"): Case(404, body={}),
    ("POST", "/v1/workflow-runs/{run_id}/pause"): Case(404, body={}),
    ("POST", "/v1/workflows/runs/{run_id}/pause"): Case(404, body={}),
    ("POST", "/v1/workflow-runs/{run_id}/resume"): Case(404, body={}),
    ("POST", "/v1/workflows/runs/{run_id}/resume"): Case(404, body={}),
    ("POST", "/v1/workflow-runs/{run_id}/nodes/{node_key}/resume"): Case(404, body={}),
}

# Routes with a path parameter that names no tenant data, or that prove access otherwise.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/v1/auth/social/{provider}"): "starts a sign-in with a provider; no tenant data",
    ("GET", "/v1/invitations/{invitation_id}/accept"): "needs the mailed token (checked below)",
}


def routes_with_ids(settings: Settings) -> set[tuple[str, str]]:
    app = create_app(settings)
    found = set()
    for route in iter_route_contexts(app.routes):
        if route.path and "{" in route.path:
            found |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    return found


def test_every_route_with_an_id_is_in_the_matrix(settings: Settings) -> None:
    routes = routes_with_ids(settings)
    missing = routes - MATRIX.keys() - PUBLIC.keys()
    assert not missing, f"add these routes to the isolation MATRIX (or PUBLIC): {sorted(missing)}"
    assert not (MATRIX.keys() | PUBLIC.keys()) - routes, "the matrix lists routes that are gone"


@dataclass
class World:
    ids: dict[str, str]
    key: str
    token_check: str


async def build_org_a(client: httpx.AsyncClient, services: Services) -> World:
    alice = await verified_user(client, services, "alice@example.com")
    org = await create_org(client, alice, "org-a")
    org_id = org["id"]
    h = alice.headers
    team = data(
        await client.post(
            "/v1/teams", json={"organization_id": org_id, "slug": "a-team", "name": "A"}, headers=h
        ),
        201,
    )
    job = data(
        await client.post(
            "/v1/jobs",
            json={"organization_id": org_id, "modality": "text", "input": {"prompt": "a"}},
            headers=h,
        ),
        201,
    )
    inv = data(
        await client.post(
            "/v1/invitations",
            json={"organization_id": org_id, "email": "carol@example.com"},
            headers=h,
        ),
        201,
    )
    key = data(
        await client.post("/v1/api-keys", json={"name": "a", "organization_id": org_id}, headers=h),
        201,
    )
    grant = data(
        await client.post(
            "/v1/permissions",
            json={"principal_id": alice.id, "organization_id": org_id, "action": "audit.read"},
            headers=h,
        ),
        201,
    )
    data(
        await client.post(
            f"/v1/organizations/{org_id}/secrets",
            json={"name": "SECRET_A", "value": "a"},
            headers=h,
        ),
        201,
    )
    definition = data(
        await client.post(
            "/v1/workflow-definitions",
            json={
                "organization_id": org_id,
                "name": "a-flow",
                "nodes": [{"key": "gate", "operation": "workflow.approval"}],
            },
            headers=h,
        ),
        201,
    )
    run = data(
        await client.post(
            "/v1/workflow-runs", json={"workflow_definition_id": definition["id"]}, headers=h
        ),
        201,
    )
    gallery = data(
        await client.post(
            "/v1/galleries",
            json={"organization_id": org_id, "kind": "portrait", "name": "A's"},
            headers=h,
        ),
        201,
    )
    item = data(
        await client.post(
            f"/v1/galleries/{gallery['id']}/items",
            json={"url": "https://example.com/a.png", "tags": ["a"]},
            headers=h,
        ),
        201,
    )
    webhook = data(
        await client.post(
            "/v1/webhooks",
            json={"organization_id": org_id, "url": "http://127.0.0.1:9/a", "events": []},
            headers=h,
        ),
        201,
    )
    schedule = data(
        await client.post(
            f"/v1/workflow-definitions/{definition['id']}/schedules",
            json={"cron_expression": "0 9 * * 1-5"},
            headers=h,
        ),
        201,
    )
    # A finished delivery of A's webhook (written directly: nothing listens at its URL).
    async with services.db.write() as session:
        delivery = WebhookDelivery(
            webhook_id=webhook["id"],
            organization_id=org_id,
            event_id=new_id(),
            event_seq=0,
            event_kind="job.completed",
            body="{}",
            status="failed",
            attempts=1,
        )
        session.add(delivery)
        await session.flush()
        delivery_id = delivery.id
    worker = data(
        await client.post(
            "/v1/workers",
            json={"name": "a", "operations": [{"name": "acme.step"}], "organization_id": org_id},
            headers=h,
        ),
        201,
    )
    # A task of A's worker operation, leased to A's worker (written directly, like the run's).
    async with services.db.write() as session:
        task = WorkItem(
            kind="worker:acme.step",
            ref_id=new_id(),
            organization_id=org_id,
            payload={"run_id": run["id"], "node_key": "w", "node_attempt": 1},
            status="running",
            attempts=1,
            lease_owner=worker["id"],
        )
        session.add(task)
        await session.flush()
        task_id = task.id
    ids = {
        "worker_id": worker["id"],
        "task_id": task_id,
        "schedule_id": schedule["id"],
        "webhook_id": webhook["id"],
        "delivery_id": delivery_id,
        "organization_id": org_id,
        "gallery_id": gallery["id"],
        "item_id": item["id"],
        "definition_id": definition["id"],
        "run_id": run["id"],
        "node_key": "gate",
        "org_id": org_id,
        "principal_id": alice.id,
        "team_id": team["id"],
        "job_id": job["id"],
        "invitation_id": inv["id"],
        "key_id": key["id"],
        "grant_id": grant["id"],
        "name": "SECRET_A",
    }
    return World(ids, key["key"], f"/v1/invitations/{inv['id']}/accept")


@pytest.mark.parametrize("caller", ["user", "api_key"])
async def test_org_b_cannot_reach_org_a(
    client: httpx.AsyncClient, services: Services, caller: str
) -> None:
    world = await build_org_a(client, services)
    bob = await verified_user(client, services, "bob@example.com")
    org_b = await create_org(client, bob, "org-b")
    headers = bob.headers
    if caller == "api_key":
        key = data(
            await client.post(
                "/v1/api-keys", json={"name": "b", "organization_id": org_b["id"]}, headers=headers
            ),
            201,
        )
        headers = {"authorization": f"Bearer {key['key']}"}
    wrong = []
    for (method, template), case in MATRIX.items():
        path = template.format(**world.ids)
        response = await client.request(method, path, json=case.body, headers=headers)
        if response.status_code != case.expected:
            wrong.append((method, template, response.status_code, response.text[:200]))
        elif response.status_code == 404:
            assert response.json()["error"]["code"] == "not_found"
    assert wrong == []
    forged = await client.get(world.token_check, params={"token": "guess"}, headers=headers)
    assert forged.status_code == 404

    # Nothing of organization A changed.
    alice_key = {"authorization": f"Bearer {world.key}"}
    assert (
        data(await client.get("/v1/me", headers=alice_key))["organization_id"]
        == world.ids["org_id"]
    )
    secrets = data(
        await client.get(f"/v1/organizations/{world.ids['org_id']}/secrets", headers=alice_key)
    )
    assert [s["name"] for s in secrets] == ["SECRET_A"]
    org_a = data(await client.get(f"/v1/organizations/{world.ids['org_id']}", headers=alice_key))
    assert (org_a["name"], org_a["archived"]) == ("Org-A", False)
    members = data(
        await client.get(f"/v1/organizations/{world.ids['org_id']}/members", headers=alice_key)
    )
    assert [(m["principal_id"], m["role"]) for m in members] == [
        (world.ids["principal_id"], "owner")
    ]
