"""Calls and options the API accepts, reached through the SDK against a real server."""

from __future__ import annotations

import datetime as dt
import re
import time
from urllib.parse import unquote

import pytest

from fabric_platform import (
    AsyncFabricClient,
    FabricClient,
    FabricForbiddenError,
    FabricValidationError,
)
from fabric_server.testing import LiveServer

NOOP = [{"key": "step", "operation": "workflow.noop"}]
WAIT = [{"key": "gate", "operation": "workflow.approval"}]


def test_job_and_run_options(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        job = fabric.create_job(
            modality="text", input={"prompt": "pinned"}, model="echo-1", tier="basic", priority=9
        )
        assert (job["model"], job["tier"]) == ("echo-1", "basic")
        with pytest.raises(FabricValidationError, match="priority"):
            fabric.create_job(modality="text", input={"prompt": "p"}, priority=5000)

        wf_id = fabric.upsert_workflow(name="labelled", nodes=NOOP)
        run = fabric.get_run(fabric.run_workflow(wf_id, priority=3, environment="staging"))
        assert (run["environment"], run["priority"]) == ("staging", 3)

        waiting = fabric.run_workflow(fabric.upsert_workflow(name="gated", nodes=WAIT))
        cancelled = fabric.cancel_run(waiting, reason="superseded")
        assert cancelled["status"] == "cancelled"
        reasons = [
            e["payload"]["reason"]
            for e in fabric.run_log(waiting)["events"]
            if e["kind"] == "workflow.run.cancelled"
        ]
        assert reasons == ["superseded"]


def test_webhook_without_events_and_paused(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        org_id = fabric.organization_id
        assert org_id is not None
        webhook = fabric.create_webhook(org_id, "https://example.com/all", active=False)
        assert (webhook["events"], webhook["active"]) == ([], False)


def test_providers_check_and_gallery_limit(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        checked = {p["id"]: p for p in fabric.providers(check=True)}
        assert checked["echo"]["available"] is True
        fabric.create_gallery("portrait", "Second")
        assert len(fabric.list_galleries("portrait")) == 2
        assert len(fabric.list_galleries("portrait", limit=1)) == 1


def mails_to(server: LiveServer, to: str) -> list[dict[str, str]]:
    mails: list[dict[str, str]] = server.get("/v1/dev/outbox", params={"to": to}).json()["data"]
    return mails


def newest_token(server: LiveServer, to: str, path: str) -> str:
    match = re.search(rf"{re.escape(path)}\?token=([^\s&]+)", mails_to(server, to)[0]["body"])
    assert match
    return unquote(match.group(1))


def test_grants_keys_and_invitations(server: LiveServer) -> None:
    with (
        FabricClient(base_url=server.base_url) as owner,
        FabricClient(base_url=server.base_url) as member,
    ):
        owner.signup("owner@example.com", "password123")
        org = owner.create_organization(slug="acme", name="Acme Corp")
        member_id = member.signup("member@example.com", "password123")["user"]["id"]
        member.resend_verification("member@example.com")
        deadline = time.monotonic() + 10  # mailed right after the answer
        while len(mails_to(server, "member@example.com")) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(mails_to(server, "member@example.com")) == 2
        member.verify_email(newest_token(server, "member@example.com", "/v1/auth/verify"))

        inv = owner.create_invitation(org["id"], "member@example.com")
        assert [i["id"] for i in owner.list_invitations(org["id"])] == [inv["id"]]
        assert owner.get_invitation(inv["id"])["email"] == "member@example.com"
        member.accept_invitation(inv["id"])
        assert owner.get_invitation(inv["id"])["status"] == "accepted"

        # An explicit deny wins over what the member role allows, until it is removed.
        grant = owner.create_permission_grant(org["id"], member_id, "job.create", "deny")
        assert [g["id"] for g in owner.list_permission_grants(org["id"])] == [grant["id"]]
        with pytest.raises(FabricForbiddenError):
            member.create_job(modality="text", input={"prompt": "p"}, organization_id=org["id"])
        with pytest.raises(FabricForbiddenError):
            member.create_permission_grant(org["id"], member_id, "job.create")
        owner.delete_permission_grant(grant["id"])
        assert owner.list_permission_grants(org["id"], principal_id=member_id) == []
        member.create_job(modality="text", input={"prompt": "p"}, organization_id=org["id"])

        expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7)
        key = owner.create_api_key("ci", organization_id=org["id"], expires_at=expires)
        assert key["organization_id"] == org["id"]
        assert owner.get_api_key(key["id"])["expires_at"] is not None
        assert [k["id"] for k in owner.list_api_keys(organization_id=org["id"])] == [key["id"]]


async def test_async_twins(server: LiveServer) -> None:
    async with AsyncFabricClient(base_url=server.base_url) as fabric:
        job = await fabric.create_job(modality="text", input={"prompt": "p"}, model="echo-1")
        assert job["model"] == "echo-1"
        key = await fabric.create_api_key("ci")  # the caller's organization
        assert (await fabric.get_api_key(key["id"]))["organization_id"] == key["organization_id"]
        org_id = key["organization_id"]
        me = (await fabric.get_me())["principal_id"]
        grant = await fabric.create_permission_grant(org_id, me, "job.read", "deny")
        assert [g["effect"] for g in await fabric.list_permission_grants(org_id)] == ["deny"]
        await fabric.delete_permission_grant(grant["id"])
        assert await fabric.list_invitations(org_id) == []
