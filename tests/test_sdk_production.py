"""The SDK against a production-mode server, authenticated by an API key alone.

In production no request acts as the dev owner and the default organization does not exist:
a client given only an API key must act in the key's organization, as a raw HTTP call does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric_platform import AsyncFabricClient, FabricAuthError, FabricClient, FabricError
from fabric_server.testing import LiveServer, fast_settings

NODES = [
    {
        "key": "shout",
        "type": "text.transform_basic",
        "config": {"operation": "upper"},
        "inputs": {"text": "$context.text"},
        "outputs": {"text": "$context.loud"},
    }
]


@pytest.fixture
def production(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = fast_settings(
        database_url,
        tmp_path,
        env="production",
        signing_secret="s" * 32,
        secrets_master_key="k" * 32,
    )
    with LiveServer(settings) as live:
        yield live


@pytest.fixture
def owner(production: LiveServer) -> Iterator[FabricClient]:
    with FabricClient(base_url=production.base_url) as client:
        client.signup("owner@example.com", "password123")
        yield client


def acme_key(owner: FabricClient) -> tuple[str, str, str]:
    """A new organization and an API key of it: (organization id, key id, key)."""
    org = owner.create_organization(slug="acme", name="Acme Corp")
    key = owner.create_api_key("ci-pipeline", org["id"])
    return org["id"], key["id"], key["key"]


def test_the_quick_start_with_only_an_api_key(production: LiveServer, owner: FabricClient) -> None:
    org_id, _, key = acme_key(owner)
    with FabricClient(base_url=production.base_url) as anonymous, pytest.raises(FabricAuthError):
        anonymous.get_me()  # production: no credentials, no dev owner

    with FabricClient(base_url=production.base_url, api_key=key) as fabric:
        job = fabric.create_job(
            modality="text",
            input={"prompt": "Summarize this article"},
            idempotency_key="unique-key-123",
        )
        kinds = [event["kind"] for event in fabric.stream_job_events(job["id"])]
        job = fabric.get_job(job["id"])
        usage = fabric.get_job_usage(job["id"])

        assert job["organization_id"] == org_id
        assert kinds[-1] == "job.completed"
        assert job["status"] == "completed"
        assert usage["job_id"] == job["id"]
        assert fabric.organization_id is None  # nothing needed it yet


def test_calls_naming_the_organization_in_their_path_learn_it_once(
    production: LiveServer, owner: FabricClient
) -> None:
    org_id, key_id, key = acme_key(owner)
    with FabricClient(base_url=production.base_url, api_key=key) as fabric:
        fabric.set_secret("OPENAI_API_KEY", "sk-...")
        names = fabric.list_secrets()
        assert fabric.organization_id == org_id

        wf_id = fabric.upsert_workflow(name="shout", nodes=NODES)
        run = fabric.wait_for_run(
            fabric.run_workflow(wf_id, context={"text": "hi"}), poll_interval=0.05, timeout=30
        )
        gallery = fabric.create_gallery("persona", "Team personas")
        listed = [g["id"] for g in fabric.list_galleries("persona")]
        fabric.delete_secret("OPENAI_API_KEY")

        assert names == ["OPENAI_API_KEY"]
        assert fabric.get_workflow(wf_id)["organization_id"] == org_id
        assert (run["status"], run["context"]["loud"]) == ("completed", "HI")
        assert gallery["organization_id"] == org_id
        assert gallery["id"] in listed
        assert fabric.list_secrets() == []

        # The owner reads what the key did in the organization's audit log.
        logs = owner.get_org_audit_logs(org_id, actor_id=owner.get_me()["principal_id"])
        by_key = [e for e in logs["items"] if e["api_key_id"] == key_id]
        assert {e["action"] for e in by_key} >= {"secret.set", "secret.delete", "gallery.create"}
        assert {e["actor_type"] for e in by_key} == {"api_key"}
        walked = list(fabric.iter_org_audit_logs(org_id, page_size=2, action="secret.set"))
        assert [(e["action"], e["resource_type"]) for e in walked] == [("secret.set", "secret")]


def test_the_environment_configures_a_client(
    production: LiveServer, owner: FabricClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    org_id, _, key = acme_key(owner)
    monkeypatch.setenv("FABRIC_BASE_URL", production.base_url)
    monkeypatch.setenv("FABRIC_API_KEY", key)
    monkeypatch.setenv("FABRIC_ORGANIZATION_ID", org_id)

    with FabricClient() as fabric:
        assert fabric.organization_id == org_id
        fabric.set_secret("TOKEN", "x")
        assert fabric.list_secrets() == ["TOKEN"]


def test_a_user_token_in_one_organization_learns_it(production: LiveServer) -> None:
    with FabricClient(base_url=production.base_url) as person:
        person.signup("solo@example.com", "password123")
        (personal,) = person.get_my_organizations()
        token = person.access_token

    with FabricClient(base_url=production.base_url, api_key=token) as fabric:
        fabric.set_secret("MINE", "x")
        assert fabric.organization_id == personal["id"]


def test_a_user_token_in_several_organizations_must_name_one(
    production: LiveServer, owner: FabricClient
) -> None:
    org_id, _, _ = acme_key(owner)
    token = owner.access_token

    with (
        FabricClient(base_url=production.base_url, api_key=token) as fabric,
        pytest.raises(FabricError, match="organization_id"),
    ):
        fabric.list_secrets()
    with FabricClient(
        base_url=production.base_url, api_key=token, organization_id=org_id
    ) as fabric:
        assert fabric.list_secrets() == []


async def test_async_client_with_only_an_api_key(
    production: LiveServer, owner: FabricClient
) -> None:
    org_id, _, key = acme_key(owner)
    async with AsyncFabricClient(base_url=production.base_url, api_key=key) as fabric:
        await fabric.set_secret("ASYNC", "x")
        assert await fabric.list_secrets() == ["ASYNC"]
        job = await fabric.create_job(modality="embedding", input={"text": "vectors"})
        mine = [e async for e in fabric.iter_audit_logs(page_size=1)]

        assert job["organization_id"] == org_id
        assert fabric.organization_id == org_id
        assert [e["action"] for e in mine[:2]] == ["job.create", "secret.set"]
        assert mine[0]["resource_id"] == job["id"]


def test_the_first_change_made_with_a_key_is_audited(
    production: LiveServer, owner: FabricClient
) -> None:
    org_id, key_id, key = acme_key(owner)
    with FabricClient(base_url=production.base_url, api_key=key) as fabric:
        job = fabric.create_job(modality="text", input={"prompt": "first call of the key"})

    newest = owner.get_org_audit_logs(org_id)["items"][0]
    assert (newest["action"], newest["resource_id"]) == ("job.create", job["id"])
    assert newest["api_key_id"] == key_id
