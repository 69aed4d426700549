"""Cached access, credential and budget answers are exact: a change takes effect on the very
next request — in the process that made it, and in another server process on the same
database, whose caches were warm."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_llm import FakeLLM
from server_helpers import ServerProcess
from tenancy_helpers import User, add_member, create_org, data, verified_user

from fabric_server.services import Services
from fabric_server.settings import Settings
from fabric_server.testing import fast_settings

LOCAL_URLS = "true"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, llm: FakeLLM) -> Settings:
    return fast_settings(
        database_url, tmp_path, allow_private_provider_urls=True, provider_retry_base_seconds=0.0
    )


@pytest.fixture
def other_process(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A second `fabric-server serve` on the same database (and the same dev-mode secrets,
    so tokens and sealed secrets are good in both)."""
    process = ServerProcess(
        database_url,
        tmp_path / "other",
        FABRIC_DATA_DIR=str(tmp_path),
        FABRIC_ALLOW_PRIVATE_PROVIDER_URLS=LOCAL_URLS,
        FABRIC_PROVIDER_RETRY_BASE_SECONDS="0",
    )
    (tmp_path / "other").mkdir()
    try:
        yield process.start()
    finally:
        process.close()


@pytest.fixture(params=["this process", "another process"])
async def observer(
    request: pytest.FixtureRequest, client: httpx.AsyncClient, tmp_path: Path, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """Where the effect of a change is looked for: the server that made it, or another."""
    if request.param == "this process":
        yield client
        return
    other: ServerProcess = request.getfixturevalue("other_process")
    async with httpx.AsyncClient(base_url=other.base_url, timeout=30) as remote:
        yield remote


async def owner_and_org(client: httpx.AsyncClient, services: Services) -> tuple[User, str]:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    return owner, org["id"]


async def test_a_removed_member_is_refused_at_once(
    client: httpx.AsyncClient, services: Services, observer: httpx.AsyncClient
) -> None:
    owner, org_id = await owner_and_org(client, services)
    member = await add_member(client, services, owner, org_id, "m@example.com", "member")
    path = f"/v1/organizations/{org_id}"
    assert (await observer.get(path, headers=member.headers)).status_code == 200  # cached

    removed = await client.delete(f"{path}/members/{member.id}", headers=owner.headers)
    assert removed.status_code == 200, removed.text

    assert (await observer.get(path, headers=member.headers)).status_code == 404


async def test_a_disabled_key_is_refused_at_once(
    client: httpx.AsyncClient, services: Services, observer: httpx.AsyncClient
) -> None:
    owner, org_id = await owner_and_org(client, services)
    key = data(
        await client.post(
            "/v1/api-keys", json={"name": "ci", "organization_id": org_id}, headers=owner.headers
        ),
        201,
    )
    with_key = {"Authorization": f"Bearer {key['key']}"}
    assert (await observer.get("/v1/jobs", headers=with_key)).status_code == 200  # cached

    disabled = await client.post(f"/v1/api-keys/{key['id']}/disable", headers=owner.headers)
    assert disabled.status_code == 200, disabled.text

    assert (await observer.get("/v1/jobs", headers=with_key)).status_code == 401


async def test_a_revoked_grant_is_refused_at_once(
    client: httpx.AsyncClient, services: Services, observer: httpx.AsyncClient
) -> None:
    owner, org_id = await owner_and_org(client, services)
    viewer = await add_member(client, services, owner, org_id, "v@example.com", "viewer")
    grant = data(
        await client.post(
            "/v1/permissions",
            json={"principal_id": viewer.id, "organization_id": org_id, "action": "job.create"},
            headers=owner.headers,
        ),
        201,
    )
    job = {"modality": "text", "input": {"prompt": "hi"}, "organization_id": org_id}
    allowed = await observer.post("/v1/jobs", json=job, headers=viewer.headers)
    assert allowed.status_code == 201, allowed.text

    revoked = await client.delete(f"/v1/permissions/{grant['id']}", headers=owner.headers)
    assert revoked.status_code == 200, revoked.text

    assert (await observer.post("/v1/jobs", json=job, headers=viewer.headers)).status_code == 403


async def test_a_changed_secret_is_used_at_once(
    client: httpx.AsyncClient, services: Services, observer: httpx.AsyncClient, llm: FakeLLM
) -> None:
    owner, org_id = await owner_and_org(client, services)
    secrets = f"/v1/organizations/{org_id}/secrets"

    async def set_secret(name: str, value: str) -> None:
        response = await client.post(
            secrets, json={"name": name, "value": value}, headers=owner.headers
        )
        assert response.status_code in (200, 201), response.text

    await set_secret("OPENAI_BASE_URL", llm.openai_base_url)
    await set_secret("OPENAI_API_KEY", "sk-first")
    call = {
        "modality": "text",
        "input": {"prompt": "hi"},
        "model": "gpt-4o",
        "organization_id": org_id,
    }

    async def key_used() -> Any:
        response = await observer.post("/v1/providers/execute", json=call, headers=owner.headers)
        assert response.status_code == 200, response.text
        return llm.requests[-1].headers["authorization"]

    assert await key_used() == "Bearer sk-first"  # cached
    await set_secret("OPENAI_API_KEY", "sk-second")
    assert await key_used() == "Bearer sk-second"


async def test_a_lowered_budget_refuses_the_next_paid_call(
    client: httpx.AsyncClient, services: Services, observer: httpx.AsyncClient, llm: FakeLLM
) -> None:
    owner, org_id = await owner_and_org(client, services)
    for name, value in (("OPENAI_BASE_URL", llm.openai_base_url), ("OPENAI_API_KEY", "sk-x")):
        await client.post(
            f"/v1/organizations/{org_id}/secrets",
            json={"name": name, "value": value},
            headers=owner.headers,
        )
    call = {
        "modality": "text",
        "input": {"prompt": "hi"},
        "model": "gpt-4o",
        "organization_id": org_id,
    }
    budget = f"/v1/organizations/{org_id}/budget"
    await client.put(budget, json={"monthly_limit_usd": 100.0}, headers=owner.headers)
    paid = await observer.post("/v1/providers/execute", json=call, headers=owner.headers)
    assert paid.status_code == 200, paid.text  # cached: a limit far from reached

    lowered = await client.put(budget, json={"monthly_limit_usd": 0.000001}, headers=owner.headers)
    assert lowered.status_code == 200, lowered.text

    refused = await observer.post("/v1/providers/execute", json=call, headers=owner.headers)
    assert refused.status_code == 402, refused.text
