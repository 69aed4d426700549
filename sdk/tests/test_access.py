"""Permission grants, API key options, invitations, and calls whose options changed."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable

import httpx
import pytest

from fabric_platform import AsyncFabricClient, FabricClient

from .helpers import Script, ok

MakeClient = Callable[..., FabricClient]
GRANT = {"id": "gr-1", "principal_id": "p-1", "action": "job.read", "effect": "deny"}


def sent(script: Script) -> list[tuple[str, str, Any]]:
    return [
        (r.method, r.url.path, json.loads(r.content) if r.content else dict(r.url.params))
        for r in script.requests
    ]


def test_permission_grants(make_client: MakeClient) -> None:
    script = Script(ok(GRANT, 201), ok([GRANT]), ok(None))
    fabric = make_client(script)

    grant = fabric.create_permission_grant("org-1", "p-1", "job.read", "deny", team_id="t-1")
    assert fabric.list_permission_grants("org-1", principal_id="p-1") == [GRANT]
    fabric.delete_permission_grant(grant["id"])

    assert sent(script) == [
        (
            "POST",
            "/v1/permissions",
            {
                "organization_id": "org-1",
                "principal_id": "p-1",
                "action": "job.read",
                "effect": "deny",
                "team_id": "t-1",
            },
        ),
        ("GET", "/v1/permissions", {"organization_id": "org-1", "principal_id": "p-1"}),
        ("DELETE", "/v1/permissions/gr-1", {}),
    ]


def test_api_key_organization_forms(make_client: MakeClient) -> None:
    script = Script(ok({"id": "k", "key": "fab_live_x"}, 201))
    fabric = make_client(script)
    expiry = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)

    fabric.create_api_key("ci", "org-1", ["job.read"])
    fabric.create_api_key("ci", organization_id="org-1", expires_at=expiry)
    fabric.create_api_key("ci")  # the caller's organization (an API key's own)

    assert script.bodies() == [
        {"name": "ci", "organization_id": "org-1", "scopes": ["job.read"]},
        {"name": "ci", "organization_id": "org-1", "expires_at": "2030-01-01T00:00:00+00:00"},
        {"name": "ci"},
    ]


def test_api_key_with_two_different_organizations_is_refused(make_client: MakeClient) -> None:
    script = Script(ok({}))
    with pytest.raises(ValueError, match="two organizations"):
        make_client(script).create_api_key("ci", "org-1", organization_id="org-2")
    assert script.requests == []


def test_api_key_reads(make_client: MakeClient) -> None:
    script = Script(ok([]), ok({"id": "k-1"}))
    fabric = make_client(script)

    assert fabric.list_api_keys(organization_id="org-1") == []
    assert fabric.get_api_key("k-1") == {"id": "k-1"}
    assert sent(script) == [
        ("GET", "/v1/api-keys", {"organization_id": "org-1"}),
        ("GET", "/v1/api-keys/k-1", {}),
    ]


def test_invitation_reads(make_client: MakeClient) -> None:
    script = Script(ok([{"id": "inv-1", "status": "pending"}]), ok({"id": "inv-1"}))
    fabric = make_client(script)

    assert fabric.list_invitations("org-1")[0]["status"] == "pending"
    assert fabric.get_invitation("inv-1")["id"] == "inv-1"
    assert sent(script) == [
        ("GET", "/v1/invitations", {"organization_id": "org-1"}),
        ("GET", "/v1/invitations/inv-1", {}),
    ]


def test_a_webhook_without_events_receives_every_event(make_client: MakeClient) -> None:
    script = Script(ok({"id": "wh-1", "secret": "whsec_x"}, 201))
    make_client(script).create_webhook("org-1", "https://example.com/hooks", active=False)

    assert script.bodies() == [
        {"organization_id": "org-1", "url": "https://example.com/hooks", "active": False}
    ]


def test_job_options_and_run_options(make_client: MakeClient) -> None:
    created = ok({"id": "x", "status": "pending"}, 201)
    script = Script(created, created, ok(None), ok({"id": "x", "status": "cancelled"}))
    fabric = make_client(script)

    fabric.create_job(modality="text", input={}, model="gpt-4o", tier="premium", priority=-3)
    fabric.run_workflow("wf-1", environment="staging")
    fabric.cancel_run("run-1", reason="superseded")

    create_job, create_run, start, cancel = script.bodies()
    assert {k: create_job[k] for k in ("model", "tier", "priority")} == {
        "model": "gpt-4o",
        "tier": "premium",
        "priority": -3,
    }
    assert create_run["environment"] == "staging"
    assert start == {}
    assert cancel == {"reason": "superseded"}


def test_provider_health_check_flag_is_sent_only_when_asked(make_client: MakeClient) -> None:
    script = Script(ok([]))
    fabric = make_client(script)

    fabric.providers()
    fabric.list_providers(check=True)

    assert [dict(r.url.params) for r in script.requests] == [{}, {"check": "true"}]


def test_resend_verification(make_client: MakeClient) -> None:
    script = Script(httpx.Response(202, json={"data": {"message": "sent"}}))
    assert make_client(script).resend_verification("a@example.com") is None
    assert sent(script) == [("POST", "/v1/auth/resend-verification", {"email": "a@example.com"})]


async def test_async_twins(make_async_client: Callable[..., AsyncFabricClient]) -> None:
    script = Script(ok(GRANT, 201), ok([GRANT]), ok(None), ok({"id": "k-1"}), ok([]), ok({}))
    fabric = make_async_client(script)

    await fabric.create_permission_grant("org-1", "p-1", "job.read")
    await fabric.list_permission_grants("org-1")
    await fabric.delete_permission_grant("gr-1")
    await fabric.get_api_key("k-1")
    await fabric.list_invitations("org-1")
    await fabric.get_invitation("inv-1")

    assert [(m, p) for m, p, _ in sent(script)] == [
        ("POST", "/v1/permissions"),
        ("GET", "/v1/permissions"),
        ("DELETE", "/v1/permissions/gr-1"),
        ("GET", "/v1/api-keys/k-1"),
        ("GET", "/v1/invitations"),
        ("GET", "/v1/invitations/inv-1"),
    ]
