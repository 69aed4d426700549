"""Jobs: submission, execution through the echo provider, idempotency, paging, isolation."""

from __future__ import annotations

import uuid

import httpx
from server_helpers import assert_error, wait_for_job

from fabric_server.access.models import Membership
from fabric_server.orgs.models import Organization
from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, DEV_OWNER_ID


async def submit(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    payload = {"modality": "text", "input": {"prompt": "Summarize this article"}, **body}
    return await client.post("/v1/jobs", json=payload)


async def test_text_job_runs_to_completion(client: httpx.AsyncClient) -> None:
    response = await submit(client)
    assert response.status_code == 201
    job = response.json()["data"]
    assert job["id"] == job["job_id"]
    assert job["status"] == "pending"
    assert job["organization_id"] == DEFAULT_ORGANIZATION_ID
    assert job["created_by"] == DEV_OWNER_ID

    done = await wait_for_job(client, job["id"])
    assert done["status"] == "completed"
    assert done["output"]["text"] == "Summarize this article"
    assert done["output"]["provider"] == "echo"
    assert done["attempts"] == 1
    assert done["started_at"] is not None
    assert done["completed_at"] >= done["started_at"] >= done["created_at"]


async def test_every_modality_has_an_honest_echo_output(client: httpx.AsyncClient) -> None:
    outputs = {}
    for modality in ("text", "embedding", "image", "audio", "video"):
        job = (await submit(client, modality=modality)).json()["data"]
        outputs[modality] = (await wait_for_job(client, job["id"]))["output"]
    assert len(outputs["embedding"]["embedding"]) == outputs["embedding"]["dimensions"]
    assert outputs["image"]["url"].startswith("data:image/svg+xml;base64,")
    assert outputs["audio"]["url"].startswith("data:audio/wav;base64,")
    assert "echo provider" in outputs["video"]["note"]
    again = (await submit(client, modality="embedding")).json()["data"]
    assert (await wait_for_job(client, again["id"]))["output"] == outputs["embedding"]


async def test_usage_is_recorded_per_execution(client: httpx.AsyncClient) -> None:
    job = (await submit(client, input={"prompt": "one two three"})).json()["data"]
    await wait_for_job(client, job["id"])
    usage = (await client.get(f"/v1/jobs/{job['id']}/usage")).json()["data"]
    assert usage["job_id"] == job["id"]
    assert usage["provider_id"] == "echo"
    assert usage["input_tokens"] == 3
    assert usage["output_tokens"] == 3
    assert usage["estimated_cost_usd"] == 0.0
    assert len(usage["records"]) == 1


async def test_idempotent_submission_returns_the_original_job(client: httpx.AsyncClient) -> None:
    first = await submit(client, idempotency_key="unique-key-123")
    second = await submit(client, idempotency_key="unique-key-123")
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["data"]["id"] == first.json()["data"]["id"]
    listed = (await client.get("/v1/jobs")).json()["data"]["items"]
    assert len(listed) == 1


async def test_idempotency_key_reused_with_another_body_conflicts(
    client: httpx.AsyncClient,
) -> None:
    await submit(client, idempotency_key="k")
    response = await submit(client, idempotency_key="k", input={"prompt": "different"})
    assert_error(response, 409, "conflict")


async def test_bad_input_is_rejected_and_nothing_is_stored(client: httpx.AsyncClient) -> None:
    assert_error(await submit(client, modality="smell"), 400, "validation_failed")
    assert_error(await submit(client, input={"prompt": ""}), 400, "validation_failed")
    # A model no provider offers: the schema cannot list them all (422).
    assert_error(await submit(client, model="no-such-model"), 422, "validation_failed")
    assert_error(await submit(client, unexpected=1), 400, "validation_failed")
    assert (await client.get("/v1/jobs")).json()["data"]["items"] == []


async def test_failed_job_keeps_its_error(client: httpx.AsyncClient) -> None:
    job = (await submit(client, params={"fail": "upstream said no"})).json()["data"]
    done = await wait_for_job(client, job["id"])
    assert done["status"] == "failed"
    assert "upstream said no" in done["error"]


async def test_unknown_job_is_not_found(client: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    assert_error(await client.get(f"/v1/jobs/{missing}"), 404, "not_found")
    assert_error(await client.get(f"/v1/jobs/{missing}/usage"), 404, "not_found")
    assert_error(await client.get(f"/v1/jobs/{missing}/events"), 404, "not_found")


async def test_list_pages_with_a_cursor(client: httpx.AsyncClient) -> None:
    ids = [(await submit(client, input={"prompt": f"n{i}"})).json()["data"]["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/jobs", params=params)).json()["data"]
        seen += [job["id"] for job in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))  # newest first, each job exactly once


async def test_bad_cursor_is_a_clear_error(client: httpx.AsyncClient) -> None:
    # Not cursor text at all: the schema's pattern (400); cursor text we never issued: 422.
    assert_error(
        await client.get("/v1/jobs", params={"cursor": "!!nope"}), 400, "validation_failed"
    )
    assert_error(await client.get("/v1/jobs", params={"cursor": "nope"}), 422, "invalid_cursor")
    assert_error(await client.get("/v1/jobs", params={"limit": 0}), 400, "validation_failed")


async def test_other_organizations_jobs_are_invisible(
    client: httpx.AsyncClient, services: Services
) -> None:
    outsider = str(uuid.uuid4())
    async with services.db.write() as session:
        org = Organization(slug="acme", name="Acme")
        session.add(org)
        await session.flush()
        session.add(Membership(organization_id=org.id, principal_id=outsider, role="owner"))
        acme_id = org.id
    as_outsider = {"x-principal-id": outsider}
    theirs = await client.post(
        "/v1/jobs",
        json={"modality": "text", "input": {"prompt": "acme"}, "organization_id": acme_id},
        headers=as_outsider,
    )
    assert theirs.status_code == 201
    mine = (await submit(client)).json()["data"]

    # The dev owner is not a member of Acme: its job answers 404, and lists never show it.
    acme_job = theirs.json()["data"]["id"]
    assert_error(await client.get(f"/v1/jobs/{acme_job}"), 404, "not_found")
    owner_ids = [j["id"] for j in (await client.get("/v1/jobs")).json()["data"]["items"]]
    assert acme_job not in owner_ids
    assert mine["id"] in owner_ids
    assert_error(
        await client.get("/v1/jobs", params={"organization_id": acme_id}), 404, "not_found"
    )
    # Submitting into an organization you do not belong to is also 404.
    response = await client.post(
        "/v1/jobs",
        json={"modality": "text", "input": {"prompt": "x"}, "organization_id": acme_id},
    )
    assert_error(response, 404, "not_found")
