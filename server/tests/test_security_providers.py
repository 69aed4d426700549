"""Provider endpoints an organization chooses (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`)
cannot reach inside the server's network, in any spelling or through DNS tricks, and never
receive a key the one who chose them may not read."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_llm import FakeLLM
from server_helpers import assert_error
from tenancy_helpers import User, add_member, create_org, data, verified_user
from workflow_helpers import app_client

from fabric_server.net.guard import AddressGuard
from fabric_server.net.http import PinnedTransport
from fabric_server.providers.anthropic import AnthropicProvider
from fabric_server.providers.base import Credentials, ProviderRequest
from fabric_server.providers.errors import ProviderNotConfigured
from fabric_server.providers.http import UpstreamClient
from fabric_server.providers.openai import OpenAIProvider
from fabric_server.services import Services
from fabric_server.testing import fast_settings

INSIDE_SPELLINGS = [
    "http://[::127.0.0.1]:{port}/v1",  # IPv4-compatible IPv6
    "http://[::ffff:127.0.0.1]:{port}/v1",  # IPv4-mapped
    "http://[64:ff9b::7f00:1]:{port}/v1",  # NAT64
    "http://[2002:7f00:1::]:{port}/v1",  # 6to4
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{port}/v1",  # Teredo (127.0.0.1 inside)
    "http://127.1:{port}/v1",
    "http://0x7f000001:{port}/v1",
    "http://localhost.:{port}/v1",
]


@pytest.fixture
async def http() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient(timeout=2.0, max_retries=0)
    yield client
    await client.aclose()


def text() -> ProviderRequest:
    return ProviderRequest(modality="text", input={"prompt": "Hello"}, model="gpt-4o")


@pytest.mark.parametrize("spelling", INSIDE_SPELLINGS)
async def test_every_spelling_of_an_inside_address_is_refused(
    spelling: str, llm: FakeLLM, http: UpstreamClient
) -> None:
    url = spelling.format(port=llm.port)
    openai = Credentials(
        {"OPENAI_API_KEY": "sk-org", "OPENAI_BASE_URL": url},
        from_organization=frozenset({"OPENAI_API_KEY", "OPENAI_BASE_URL"}),
    )
    with pytest.raises(ProviderNotConfigured, match="private"):
        await OpenAIProvider(http).execute(text(), openai)
    anthropic = Credentials(
        {"ANTHROPIC_API_KEY": "ak-org", "ANTHROPIC_BASE_URL": url.removesuffix("/v1")},
        from_organization=frozenset({"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"}),
    )
    request = ProviderRequest(modality="text", input={"prompt": "Hello"})
    with pytest.raises(ProviderNotConfigured, match="private"):
        await AnthropicProvider(http).execute(request, anthropic)
    assert llm.requests == []


class ScriptedResolver:
    """Answers name lookups from a script, one answer per call (the last one repeats)."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, host: Any, port: Any, **_: Any) -> list[Any]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port or 0))]


async def test_the_pinned_transport_connects_to_the_address_it_checked(
    llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name first resolves to the fake server, then to somewhere else (DNS rebinding):
    # the connection must go where the one checked answer pointed.
    resolver = ScriptedResolver("127.0.0.1", "10.9.9.9")
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolver)
    guard = AddressGuard.build(allow_private=True, allowed_networks=["127.0.0.0/8"])
    async with httpx.AsyncClient(transport=PinnedTransport(guard), timeout=5) as client:
        response = await client.get(f"http://rebind.example:{llm.port}/v1/models")
    assert response.status_code == 200
    assert resolver.calls == 1
    assert llm.requests[-1].headers["host"] == f"rebind.example:{llm.port}"


async def test_a_name_an_organization_chose_is_checked_on_the_connection(
    llm: FakeLLM, client: httpx.AsyncClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = ScriptedResolver("127.0.0.1")
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolver)
    for name, value in (
        ("OPENAI_API_KEY", "sk-org-secret"),
        ("OPENAI_BASE_URL", f"http://inside.example:{llm.port}/v1"),
    ):
        data(
            await client.post(
                "/v1/organizations/00000000-0000-0000-0000-000000000010/secrets",
                json={"name": name, "value": value},
            ),
            201,
        )
    response = await client.post(
        "/v1/providers/execute",
        json={"modality": "text", "input": {"prompt": "Hello"}, "model": "gpt-4o"},
    )
    body = assert_error(response, 422, "provider_not_configured")
    assert "inside.example (127.0.0.1)" in body["error"]["message"]
    assert llm.requests == []


async def set_secret(
    client: httpx.AsyncClient, user: User, org_id: str, name: str, value: str
) -> None:
    response = await client.post(
        f"/v1/organizations/{org_id}/secrets",
        json={"name": name, "value": value},
        headers=user.headers,
    )
    assert response.status_code in (200, 201), response.text


async def execute(client: httpx.AsyncClient, user: User, org_id: str) -> httpx.Response:
    body = {
        "modality": "text",
        "input": {"prompt": "Hello"},
        "model": "gpt-4o",
        "organization_id": org_id,
    }
    return await client.post("/v1/providers/execute", json=body, headers=user.headers)


async def test_an_admins_endpoint_gets_an_owners_key_only_once_an_owner_set_it(
    llm: FakeLLM, database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path, allow_private_provider_urls=True)
    async with app_client(settings) as (client, services):
        owner = await verified_user(client, services, "owner@example.com")
        org = (await create_org(client, owner, "acme"))["id"]
        admin = await add_member(client, services, owner, org, "admin@example.com", "admin")
        await set_secret(client, owner, org, "OPENAI_API_KEY", "sk-owners-key")
        # The admin points the provider at a server of their own, hoping for the key.
        await set_secret(client, admin, org, "OPENAI_BASE_URL", llm.openai_base_url)
        refused = await execute(client, admin, org)
        body = assert_error(refused, 422, "provider_not_configured")
        assert "an owner must set OPENAI_BASE_URL" in body["error"]["message"]
        listed = data(
            await client.get(f"/v1/providers?organization_id={org}", headers=admin.headers)
        )
        openai = next(p for p in listed if p["id"] == "openai")
        assert openai["available"] is False
        assert llm.requests == []
        # An owner setting the endpoint approves it.
        await set_secret(client, owner, org, "OPENAI_BASE_URL", llm.openai_base_url)
        data(await execute(client, admin, org))
        assert llm.requests[-1].headers["authorization"] == "Bearer sk-owners-key"
        # So does one person setting both (they know the key they send).
        await set_secret(client, admin, org, "OPENAI_API_KEY", "sk-admins-key")
        await set_secret(client, admin, org, "OPENAI_BASE_URL", llm.openai_base_url)
        data(await execute(client, admin, org))
        assert llm.requests[-1].headers["authorization"] == "Bearer sk-admins-key"
