"""The provider routes on a server with no real provider configured (the default)."""

from __future__ import annotations

import uuid

import httpx
from server_helpers import assert_error
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.models import Membership
from fabric_server.orgs.models import Organization
from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, DEV_OWNER_ID
from fabric_server.usage.models import UsageRecord


class DictSecrets:
    """A stand-in for the organization secret store: `get(session, org_id, name)`."""

    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values

    async def get(self, session: AsyncSession, org_id: str, name: str) -> str | None:
        return self.values.get((org_id, name))


async def add_org(services: Services, principal_id: str, role: str) -> str:
    async with services.db.write() as session:
        org = Organization(slug=f"org-{uuid.uuid4().hex[:8]}", name="Other")
        session.add(org)
        await session.flush()
        session.add(Membership(organization_id=org.id, principal_id=principal_id, role=role))
        return org.id


async def test_catalogue_lists_every_provider_with_its_availability(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/providers")

    assert response.status_code == 200
    providers = {p["id"]: p for p in response.json()["data"]}
    assert list(providers) == ["echo", "openai", "anthropic"]
    echo, openai, anthropic = providers["echo"], providers["openai"], providers["anthropic"]
    assert echo["available"] is True
    assert echo["healthy"] is True
    assert echo["tier"] == "basic"
    assert echo["provider_id"] == "echo"
    assert {c["modality"] for c in echo["capabilities"]} == {
        "text",
        "image",
        "audio",
        "video",
        "embedding",
    }
    assert openai["available"] is False
    assert "OPENAI_API_KEY" in openai["reason"]
    assert openai["modalities"] == ["text", "image", "audio", "embedding"]
    assert "gpt-4o" in openai["models"]
    gpt4o = next(c for c in openai["capabilities"] if c["model"] == "gpt-4o")
    assert gpt4o["input_cost_per_million_tokens"] == 2.5
    assert gpt4o["output_cost_per_million_tokens"] == 10.0
    assert gpt4o["estimated_cost_per_request"] == 0.0075
    assert anthropic["available"] is False
    assert "ANTHROPIC_API_KEY" in anthropic["reason"]
    assert anthropic["tier"] == "premium"


async def test_spec_gpt4o_call_on_a_bare_server_says_which_secret_to_set(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/providers/execute",
        json={"modality": "text", "input": {"prompt": "Hello"}, "model": "gpt-4o"},
    )

    body = assert_error(response, 422, "provider_not_configured")
    assert "OPENAI_API_KEY" in body["error"]["message"]


async def test_execute_on_echo_records_usage(client: httpx.AsyncClient, services: Services) -> None:
    response = await client.post(
        "/v1/providers/execute", json={"modality": "text", "input": {"prompt": "Hello there"}}
    )

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["provider_id"] == "echo"
    assert data["model"] == "echo-1"
    assert data["modality"] == "text"
    assert data["output"]["text"] == "Hello there"
    assert data["usage"] == {"input_tokens": 2, "output_tokens": 2, "estimated_cost_usd": 0.0}
    assert data["failed_attempts"] == []
    async with services.db.read() as session:
        (row,) = (await session.scalars(select(UsageRecord))).all()
    assert row.organization_id == DEFAULT_ORGANIZATION_ID
    assert row.principal_id == DEV_OWNER_ID
    assert row.job_id is None
    assert (row.provider_id, row.model, row.modality) == ("echo", "echo-1", "text")


async def test_estimates(client: httpx.AsyncClient) -> None:
    plain = await client.post(
        "/v1/providers/estimate", json={"modality": "text", "input": {"prompt": "Hello"}}
    )
    assert plain.status_code == 200
    assert plain.json()["data"] == {
        "provider_id": "echo",
        "model": "echo-1",
        "modality": "text",
        "tier": "basic",
        "input_tokens_estimate": 1,
        "output_tokens_estimate": 1,
        "estimated_cost_usd": 0.0,
        "currency": "USD",
        "available": True,
    }

    pinned = await client.post(
        "/v1/providers/estimate",
        json={"modality": "text", "input": {"prompt": "Hello"}, "model": "gpt-4o"},
    )
    data = pinned.json()["data"]
    assert (data["provider_id"], data["tier"], data["available"]) == ("openai", "premium", False)
    # 2 input tokens (8 characters / 4) and the default 256 output tokens.
    assert data["input_tokens_estimate"] == 2
    assert data["output_tokens_estimate"] == 256
    assert data["estimated_cost_usd"] == (2 * 2.5 + 256 * 10.0) / 1_000_000


async def test_bad_requests(client: httpx.AsyncClient) -> None:
    async def execute(**body: object) -> httpx.Response:
        payload = {"modality": "text", "input": {"prompt": "x"}, **body}
        return await client.post("/v1/providers/execute", json=payload)

    assert_error(await execute(input={}), 400, "validation_failed")
    assert_error(await execute(model="no-such-model"), 422, "validation_failed")
    assert_error(await execute(modality="smell"), 400, "validation_failed")
    assert_error(await execute(tier="premium"), 422, "provider_not_configured")
    assert_error(await execute(params={"delay_ms": -1}), 422, "validation_failed")
    assert_error(await execute(params={"fail": "nope"}), 422, "validation_failed")
    estimate = await client.post(
        "/v1/providers/estimate", json={"modality": "text", "input": {"prompt": "x"}, "model": "?"}
    )
    assert_error(estimate, 422, "validation_failed")


async def test_other_organizations_are_invisible(
    client: httpx.AsyncClient, services: Services
) -> None:
    other = await add_org(services, str(uuid.uuid4()), "owner")

    listing = await client.get("/v1/providers", params={"organization_id": other})
    assert_error(listing, 404, "not_found")
    body = {"modality": "text", "input": {"prompt": "x"}, "organization_id": other}
    assert_error(await client.post("/v1/providers/execute", json=body), 404, "not_found")
    assert_error(await client.post("/v1/providers/estimate", json=body), 404, "not_found")


async def test_viewers_may_look_but_not_execute(
    client: httpx.AsyncClient, services: Services
) -> None:
    viewer = str(uuid.uuid4())
    org = await add_org(services, viewer, "viewer")
    headers = {"x-principal-id": viewer}
    body = {"modality": "text", "input": {"prompt": "x"}, "organization_id": org}

    listing = await client.get("/v1/providers", params={"organization_id": org}, headers=headers)
    assert listing.status_code == 200
    estimate = await client.post("/v1/providers/estimate", json=body, headers=headers)
    assert estimate.status_code == 200
    denied = await client.post("/v1/providers/execute", json=body, headers=headers)
    assert_error(denied, 403, "forbidden")


async def test_organization_secrets_make_a_provider_available_for_that_org_only(
    client: httpx.AsyncClient, services: Services
) -> None:
    other = await add_org(services, DEV_OWNER_ID, "owner")
    services.providers.credential_resolver.org_secrets = DictSecrets(  # type: ignore[union-attr]
        {(other, "ANTHROPIC_API_KEY"): "ak-org-secret"}
    )

    theirs = await client.get("/v1/providers", params={"organization_id": other})
    default = await client.get("/v1/providers")

    assert {p["id"]: p["available"] for p in theirs.json()["data"]}["anthropic"] is True
    assert {p["id"]: p["available"] for p in default.json()["data"]}["anthropic"] is False
    assert "ak-org-secret" not in theirs.text


async def test_an_organization_endpoint_on_loopback_is_refused(
    client: httpx.AsyncClient, services: Services
) -> None:
    services.providers.credential_resolver.org_secrets = DictSecrets(  # type: ignore[union-attr]
        {(DEFAULT_ORGANIZATION_ID, "OPENAI_BASE_URL"): "http://127.0.0.1:9/v1"}
    )

    response = await client.post(
        "/v1/providers/execute",
        json={"modality": "text", "input": {"prompt": "Hello"}, "model": "gpt-4o"},
    )

    body = assert_error(response, 422, "provider_not_configured")
    assert "private" in body["error"]["message"]


async def test_jobs_on_an_unconfigured_provider_are_refused_at_submission(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/jobs", json={"modality": "text", "input": {"prompt": "x"}, "model": "gpt-4o"}
    )
    assert_error(response, 422, "provider_not_configured")
    premium = await client.post(
        "/v1/jobs", json={"modality": "text", "input": {"prompt": "x"}, "tier": "premium"}
    )
    assert_error(premium, 422, "provider_not_configured")
    basic = await client.post(
        "/v1/jobs", json={"modality": "text", "input": {"prompt": "x"}, "tier": "basic"}
    )
    assert basic.status_code == 201
