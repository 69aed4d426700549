"""Organization usage: totals, per-provider breakdown, records, daily series, isolation."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest
from server_helpers import assert_error, wait_for_job

from fabric_server.access.models import Membership
from fabric_server.orgs.models import Organization
from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, DEV_OWNER_ID
from fabric_server.usage.models import UsageRecord

ORG = DEFAULT_ORGANIZATION_ID
BASE = f"/v1/organizations/{ORG}/usage"


def at(day: str, time: str = "12:00:00") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}+00:00")


async def add_usage(services: Services, *rows: dict[str, object]) -> list[str]:
    """Usage rows with chosen timestamps and values."""
    ids = []
    async with services.db.write() as session:
        for values in rows:
            record = UsageRecord(
                **{
                    "organization_id": ORG,
                    "provider_id": "openai",
                    "model": "gpt-4o",
                    "modality": "text",
                    "input_tokens": 100,
                    "output_tokens": 10,
                    "cost_usd": 0.001,
                    "latency_ms": 5,
                    **values,
                }
            )
            session.add(record)
            await session.flush()
            ids.append(record.id)
    return ids


async def add_org(services: Services, principal_id: str, role: str) -> str:
    async with services.db.write() as session:
        org = Organization(slug=f"org-{uuid.uuid4().hex[:8]}", name="Other")
        session.add(org)
        await session.flush()
        session.add(Membership(organization_id=org.id, principal_id=principal_id, role=role))
        return org.id


async def test_summary_of_a_period(client: httpx.AsyncClient, services: Services) -> None:
    await add_usage(
        services,
        {"created_at": at("2026-03-01", "00:00:00"), "job_id": "job-1"},
        {"created_at": at("2026-03-15"), "job_id": "job-1"},
        {"created_at": at("2026-03-20"), "run_id": "run-1", "node_key": "write"},
        {
            "created_at": at("2026-03-31", "23:59:59"),
            "provider_id": "anthropic",
            "model": "claude-sonnet-4-0",
            "input_tokens": 50,
            "output_tokens": 5,
            "cost_usd": 0.01,
        },
        {"created_at": at("2026-04-01", "00:00:00")},  # outside: the end is exclusive
        {"created_at": at("2026-02-28", "23:59:59")},  # outside: before the start
    )

    response = await client.get(BASE, params={"start": "2026-03-01", "end": "2026-04-01"})

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {
        "organization_id": ORG,
        "period_start": "2026-03-01T00:00:00Z",
        "period_end": "2026-04-01T00:00:00Z",
        "total_runs": 1,
        "total_jobs": 1,
        "total_executions": 4,
        "input_tokens": 350,
        "output_tokens": 35,
        "total_cost_usd": pytest.approx(0.013),
        "currency": "USD",
        "by_provider": [
            {
                "provider_id": "anthropic",
                "model": "claude-sonnet-4-0",
                "executions": 1,
                "input_tokens": 50,
                "output_tokens": 5,
                "cost_usd": pytest.approx(0.01),
            },
            {
                "provider_id": "openai",
                "model": "gpt-4o",
                "executions": 3,
                "input_tokens": 300,
                "output_tokens": 30,
                "cost_usd": pytest.approx(0.003),
            },
        ],
    }


async def test_default_period_is_the_current_month(
    client: httpx.AsyncClient, services: Services
) -> None:
    now = dt.datetime.now(dt.UTC)
    await add_usage(services, {"created_at": now}, {"created_at": now - dt.timedelta(days=400)})

    data = (await client.get(BASE)).json()["data"]

    first = dt.datetime(now.year, now.month, 1, tzinfo=dt.UTC)
    assert dt.datetime.fromisoformat(data["period_start"]) == first
    assert dt.datetime.fromisoformat(data["period_end"]) > now
    assert data["total_executions"] == 1

    only_end = (await client.get(BASE, params={"end": "2026-03-10"})).json()["data"]
    assert only_end["period_start"] == "2026-03-01T00:00:00Z"


async def test_empty_period(client: httpx.AsyncClient) -> None:
    data = (await client.get(BASE, params={"start": "2020-01-01", "end": "2020-02-01"})).json()
    summary = data["data"]
    assert (summary["total_executions"], summary["total_cost_usd"]) == (0, 0.0)
    assert summary["by_provider"] == []


@pytest.mark.parametrize("path", [BASE, f"{BASE}/daily", f"{BASE}/records"])
async def test_a_period_that_ends_before_it_starts_is_refused(
    client: httpx.AsyncClient, path: str
) -> None:
    # Each bound is valid on its own (the schema holds); their order is a rule beyond it.
    response = await client.get(path, params={"start": "2026-03-05", "end": "2026-03-01"})
    assert_error(response, 422, "validation_failed")


async def test_records_page_and_filter(client: httpx.AsyncClient, services: Services) -> None:
    ids = await add_usage(
        services,
        {"created_at": at("2026-03-01"), "job_id": "job-1", "principal_id": DEV_OWNER_ID},
        {"created_at": at("2026-03-02"), "provider_id": "anthropic", "model": "claude-x"},
        {"created_at": at("2026-03-03"), "api_key_id": "key-1"},
        {"created_at": at("2026-03-04")},
        {"created_at": at("2026-03-05")},
    )

    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = (await client.get(f"{BASE}/records", params=params)).json()["data"]
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == list(reversed(ids))

    first = (await client.get(f"{BASE}/records", params={"job_id": "job-1"})).json()["data"]
    (item,) = first["items"]
    assert item["id"] == ids[0]
    assert item["principal_id"] == DEV_OWNER_ID
    assert item["cost_usd"] == item["estimated_cost_usd"] == 0.001
    assert item["created_at"] == "2026-03-01T12:00:00Z"
    assert set(item) >= {"api_key_id", "run_id", "node_key", "modality", "latency_ms"}

    async def listed(**query: str) -> list[str]:
        body = (await client.get(f"{BASE}/records", params=query)).json()["data"]
        return [i["id"] for i in body["items"]]

    assert await listed(provider_id="anthropic") == [ids[1]]
    assert await listed(model="claude-x") == [ids[1]]
    assert await listed(start="2026-03-03", end="2026-03-05") == [ids[3], ids[2]]
    assert_error(
        await client.get(f"{BASE}/records", params={"cursor": "garbage"}), 422, "invalid_cursor"
    )


async def test_daily_series_includes_empty_days(
    client: httpx.AsyncClient, services: Services
) -> None:
    await add_usage(
        services,
        {"created_at": at("2026-03-01", "00:00:00"), "job_id": "j1"},
        {"created_at": at("2026-03-01", "23:59:59"), "job_id": "j2", "cost_usd": 0.002},
        {"created_at": at("2026-03-03", "08:00:00"), "run_id": "r1"},
        {"created_at": at("2026-03-04", "00:00:00")},  # the end day is not included
    )

    response = await client.get(
        f"{BASE}/daily", params={"start": "2026-03-01", "end": "2026-03-04"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"] == [
        {
            "date": "2026-03-01",
            "executions": 2,
            "jobs": 2,
            "runs": 0,
            "input_tokens": 200,
            "output_tokens": 20,
            "cost_usd": pytest.approx(0.003),
        },
        {
            "date": "2026-03-02",
            "executions": 0,
            "jobs": 0,
            "runs": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": 0.0,
        },
        {
            "date": "2026-03-03",
            "executions": 1,
            "jobs": 0,
            "runs": 1,
            "input_tokens": 100,
            "output_tokens": 10,
            "cost_usd": pytest.approx(0.001),
        },
    ]


async def test_daily_defaults_and_limits(client: httpx.AsyncClient) -> None:
    today = dt.datetime.now(dt.UTC).date()
    rows = (await client.get(f"{BASE}/daily")).json()["data"]
    assert rows[0]["date"] == today.replace(day=1).isoformat()
    assert rows[-1]["date"] == today.isoformat()

    too_long = await client.get(
        f"{BASE}/daily", params={"start": "2024-01-01", "end": "2026-01-01"}
    )
    assert_error(too_long, 422, "validation_failed")
    backwards = await client.get(
        f"{BASE}/daily", params={"start": "2026-03-05", "end": "2026-03-01"}
    )
    assert_error(backwards, 422, "validation_failed")


async def test_job_usage_lands_in_the_organization_usage(client: httpx.AsyncClient) -> None:
    job = (
        await client.post("/v1/jobs", json={"modality": "text", "input": {"prompt": "a b c"}})
    ).json()["data"]
    await wait_for_job(client, job["id"])
    await client.post("/v1/providers/execute", json={"modality": "text", "input": {"prompt": "x"}})

    summary = (await client.get(BASE)).json()["data"]
    assert summary["total_executions"] == 2
    assert summary["total_jobs"] == 1
    assert summary["by_provider"][0]["provider_id"] == "echo"
    records = (await client.get(f"{BASE}/records", params={"job_id": job["id"]})).json()["data"]
    assert records["items"][0]["principal_id"] == DEV_OWNER_ID
    today = (await client.get(f"{BASE}/daily")).json()["data"][-1]
    assert today["executions"] == 2


async def test_usage_of_other_organizations_is_invisible(
    client: httpx.AsyncClient, services: Services
) -> None:
    other = await add_org(services, str(uuid.uuid4()), "owner")
    async with services.db.write() as session:
        session.add(
            UsageRecord(
                organization_id=other,
                provider_id="echo",
                model="echo-1",
                modality="text",
            )
        )

    for path in ("", "/records", "/daily"):
        assert_error(await client.get(f"/v1/organizations/{other}/usage{path}"), 404, "not_found")
    assert (await client.get(BASE)).json()["data"]["total_executions"] == 0


async def test_viewers_can_read_usage(client: httpx.AsyncClient, services: Services) -> None:
    viewer = str(uuid.uuid4())
    org = await add_org(services, viewer, "viewer")

    response = await client.get(
        f"/v1/organizations/{org}/usage", headers={"x-principal-id": viewer}
    )

    assert response.status_code == 200
    assert response.json()["data"]["organization_id"] == org
