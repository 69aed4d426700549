"""Monthly spending limits: setting and reading them, who may, refusing paid calls once the
month's spend reached the limit (direct, streamed, jobs, `ai.generate` nodes), the alerts
at 50/80/100 %, and the month boundary.

The openai provider points at the loopback fake: a `gpt-4o` call there uses 12 tokens in
and 7 out, $0.0001; `echo` stays free.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_llm import FakeLLM
from server_helpers import assert_error, wait_for_job
from sqlalchemy import select
from workflow_helpers import app_client, node, run_workflow

from fabric_server.access.models import Membership
from fabric_server.engine.worker import Worker
from fabric_server.events.models import Event
from fabric_server.jobs.service import JOB_WORK_KIND
from fabric_server.orgs.models import Organization
from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, Settings
from fabric_server.testing import fast_settings
from fabric_server.usage.models import UsageRecord

ORG = DEFAULT_ORGANIZATION_ID
BUDGET = f"/v1/organizations/{ORG}/budget"
SPENDING = f"/v1/organizations/{ORG}/usage/spending"
CALL_COST = 0.0001  # one gpt-4o call against the fake


def llm_settings(database_url: str, tmp_path: Path, llm: FakeLLM, **overrides: Any) -> Settings:
    return fast_settings(
        database_url,
        tmp_path,
        openai_api_key="sk-server-key",
        openai_base_url=llm.openai_base_url,
        provider_retry_base_seconds=0.0,
        **overrides,
    )


@pytest.fixture
def settings(database_url: str, tmp_path: Path, llm: FakeLLM) -> Settings:
    return llm_settings(database_url, tmp_path, llm)


async def set_limit(
    client: httpx.AsyncClient, limit: float | None, path: str = BUDGET, **extra: Any
) -> dict[str, Any]:
    response = await client.put(path, json={"monthly_limit_usd": limit, **extra})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def budget(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(BUDGET)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def execute(client: httpx.AsyncClient, model: str = "gpt-4o") -> httpx.Response:
    body = {"modality": "text", "input": {"prompt": "Hello"}, "model": model}
    return await client.post("/v1/providers/execute", json=body)


async def spend(services: Services, cost: float, at: dt.datetime | None = None) -> None:
    """A usage row recorded without a provider call (past months, large amounts)."""
    async with services.db.write() as session:
        await services.budgets.record_usage(
            session,
            [
                UsageRecord(
                    organization_id=ORG,
                    provider_id="openai",
                    model="gpt-4o",
                    modality="text",
                    cost_usd=cost,
                    created_at=at or dt.datetime.now(dt.UTC),
                )
            ],
        )


async def alerts(services: Services) -> list[dict[str, Any]]:
    async with services.db.read() as session:
        rows = await session.scalars(
            select(Event).where(Event.kind == "budget.threshold_reached").order_by(Event.seq)
        )
        return [row.payload for row in rows]


async def org_with_members(services: Services, roles: dict[str, str]) -> str:
    async with services.db.write() as session:
        org = Organization(slug=f"org-{uuid.uuid4().hex[:8]}", name="Other")
        session.add(org)
        await session.flush()
        for principal_id, role in roles.items():
            session.add(Membership(organization_id=org.id, principal_id=principal_id, role=role))
        return org.id


def this_month() -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    return dt.datetime(now.year, now.month, 1, tzinfo=dt.UTC)


async def test_no_budget_means_no_limit(client: httpx.AsyncClient) -> None:
    data = await budget(client)

    assert data["organization_id"] == ORG
    assert data["monthly_limit_usd"] is None
    assert data["alert_thresholds"] == [0.5, 0.8, 1.0]
    assert data["thresholds_reached"] == []
    assert (data["spent_usd"], data["remaining_usd"], data["exceeded"]) == (0.0, None, False)
    assert data["updated_at"] is None
    assert dt.datetime.fromisoformat(data["period_start"]) == this_month()
    assert dt.datetime.fromisoformat(data["period_end"]) > dt.datetime.now(dt.UTC)


async def test_set_read_and_clear_a_limit(client: httpx.AsyncClient, services: Services) -> None:
    await spend(services, 2.0)

    set_ = await set_limit(client, 5, alert_thresholds=[0.9, 0.5, 0.5])

    assert set_["monthly_limit_usd"] == 5
    assert set_["alert_thresholds"] == [0.5, 0.9]
    assert (set_["spent_usd"], set_["remaining_usd"], set_["exceeded"]) == (2.0, 3.0, False)
    assert set_["updated_at"] is not None
    assert await budget(client) == set_

    # Thresholds are kept when not sent; null removes the limit.
    assert (await set_limit(client, 1.5))["alert_thresholds"] == [0.5, 0.9]
    assert (await budget(client))["exceeded"] is True
    cleared = await set_limit(client, None)
    assert (cleared["monthly_limit_usd"], cleared["remaining_usd"]) == (None, None)
    assert cleared["exceeded"] is False

    async with services.db.read() as session:
        kinds = list(await session.scalars(select(Event.kind).where(Event.kind.like("budget.%"))))
    assert kinds.count("budget.updated") == 3
    logs = (await client.get(f"/v1/organizations/{ORG}/audit-logs")).json()["data"]["items"]
    assert [row["action"] for row in logs].count("budget.set") == 3


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"monthly_limit_usd": -1},
        {"monthly_limit_usd": 1e12},
        {"monthly_limit_usd": "lots"},
        {"monthly_limit_usd": 5, "alert_thresholds": [0]},
        {"monthly_limit_usd": 5, "alert_thresholds": [1.5]},
        {"monthly_limit_usd": 5, "currency": "EUR"},
    ],
)
async def test_invalid_limits_are_refused(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert_error(await client.put(BUDGET, json=body), 400, "validation_failed")


async def test_members_read_admins_set_strangers_see_nothing(
    client: httpx.AsyncClient, services: Services
) -> None:
    admin, member, viewer = (str(uuid.uuid4()) for _ in range(3))
    org = await org_with_members(services, {admin: "admin", member: "member", viewer: "viewer"})
    path = f"/v1/organizations/{org}/budget"
    body = {"monthly_limit_usd": 10}

    for who in (member, viewer):
        headers = {"x-principal-id": who}
        assert (await client.get(path, headers=headers)).status_code == 200
        spending = await client.get(f"/v1/organizations/{org}/usage/spending", headers=headers)
        assert spending.status_code == 200
        assert_error(await client.put(path, json=body, headers=headers), 403, "forbidden")

    updated = await client.put(path, json=body, headers={"x-principal-id": admin})
    assert updated.json()["data"]["monthly_limit_usd"] == 10

    stranger = {"x-principal-id": str(uuid.uuid4())}
    assert_error(await client.get(path, headers=stranger), 404, "not_found")
    assert_error(await client.put(path, json=body, headers=stranger), 404, "not_found")


async def test_direct_calls_are_refused_once_the_budget_is_spent(
    client: httpx.AsyncClient, llm: FakeLLM
) -> None:
    await set_limit(client, CALL_COST / 2)

    first = await execute(client)  # nothing spent yet: the call runs and overshoots
    assert first.status_code == 200, first.text
    assert (await budget(client))["exceeded"] is True

    refused = await execute(client)
    body = assert_error(refused, 402, "budget_exceeded")
    assert "$0.00005" in body["error"]["message"]
    assert "$0.0001 " in body["error"]["message"]
    assert body["error"]["details"]["monthly_limit_usd"] == CALL_COST / 2
    assert body["error"]["details"]["spent_usd"] == pytest.approx(CALL_COST)
    streamed = await client.post(
        "/v1/providers/execute/stream",
        json={"modality": "text", "input": {"prompt": "Hi"}, "model": "gpt-4o"},
    )
    assert_error(streamed, 402, "budget_exceeded")
    assert len(llm.requests) == 1  # refused before the provider was called

    # Free calls go on; estimates still answer.
    assert (await execute(client, model="echo-1")).json()["data"]["provider_id"] == "echo"
    free_stream = await client.post(
        "/v1/providers/execute/stream", json={"modality": "text", "input": {"prompt": "Hi"}}
    )
    assert free_stream.status_code == 200
    assert "event: completed" in free_stream.text
    estimate = await client.post(
        "/v1/providers/estimate",
        json={"modality": "text", "input": {"prompt": "Hi"}, "model": "gpt-4o"},
    )
    assert estimate.status_code == 200

    # A higher limit lets paid calls through again.
    await set_limit(client, CALL_COST * 10)
    assert (await execute(client)).status_code == 200


async def test_a_stream_records_its_spend(client: httpx.AsyncClient) -> None:
    await set_limit(client, CALL_COST / 2)
    streamed = await client.post(
        "/v1/providers/execute/stream",
        json={"modality": "text", "input": {"prompt": "Hello"}, "model": "gpt-4o"},
    )
    assert "event: completed" in streamed.text

    data = await budget(client)
    assert data["spent_usd"] > 0
    assert data["exceeded"] is True
    assert data["thresholds_reached"] == [0.5, 0.8, 1.0]


async def test_jobs_are_refused_at_submission(client: httpx.AsyncClient, llm: FakeLLM) -> None:
    await set_limit(client, 0)

    paid = {"modality": "text", "input": {"prompt": "Hi"}, "model": "gpt-4o"}
    assert_error(await client.post("/v1/jobs", json=paid), 402, "budget_exceeded")
    assert (await client.get("/v1/jobs")).json()["data"]["items"] == []

    free = await client.post("/v1/jobs", json={"modality": "text", "input": {"prompt": "Hi"}})
    assert free.status_code == 201
    assert (await wait_for_job(client, free.json()["data"]["id"]))["status"] == "completed"
    assert llm.requests == []


async def test_a_queued_job_fails_when_the_budget_ran_out_meanwhile(
    database_url: str, tmp_path: Path, llm: FakeLLM
) -> None:
    settings = llm_settings(database_url, tmp_path, llm, run_workers=False)
    async with app_client(settings) as (client, services):
        await set_limit(client, 1)
        paid = {"modality": "text", "input": {"prompt": "Hi"}, "model": "gpt-4o"}
        job = (await client.post("/v1/jobs", json=paid)).json()["data"]
        await spend(services, 1.0)

        worker = Worker(services.queue, services.handlers)
        (item,) = await services.queue.claim(worker.id, [JOB_WORK_KIND], 1)
        await services.handlers[JOB_WORK_KIND].run(item)

        failed = (await client.get(f"/v1/jobs/{job['id']}")).json()["data"]
        assert failed["status"] == "failed"
        assert failed["error"].startswith("budget_exceeded: ")
        assert failed["started_at"] is None
        assert llm.requests == []


async def test_ai_generate_nodes_fail_with_budget_exceeded(
    client: httpx.AsyncClient, llm: FakeLLM
) -> None:
    await set_limit(client, 0)
    paid = [
        {
            "key": "gen",
            "operation": "ai.generate",
            "config": {"prompt_template": "Hi", "model": "gpt-4o"},
        }
    ]

    run = await run_workflow(client, paid)

    assert run["status"] == "failed"
    assert node(run, "gen")["error"].startswith("budget_exceeded: ")
    assert node(run, "gen")["attempts"] == 1  # not retried
    assert llm.requests == []
    free = [{"key": "gen", "operation": "ai.generate", "config": {"prompt_template": "Hi"}}]
    assert (await run_workflow(client, free))["status"] == "completed"


async def test_ai_generate_spend_counts_and_alerts(
    client: httpx.AsyncClient, services: Services
) -> None:
    await set_limit(client, CALL_COST * 1.9)
    nodes = [
        {
            "key": "a",
            "operation": "ai.generate",
            "config": {"prompt_template": "A", "model": "gpt-4o"},
        },
        {
            "key": "b",
            "operation": "ai.generate",
            "depends_on": ["a"],
            "config": {"prompt_template": "B", "model": "gpt-4o"},
        },
    ]
    assert (await run_workflow(client, nodes))["status"] == "completed"

    assert [a["threshold"] for a in await alerts(services)] == [0.5, 0.8, 1.0]
    assert (await run_workflow(client, nodes))["status"] == "failed"


async def test_each_threshold_fires_once(client: httpx.AsyncClient, services: Services) -> None:
    limit = CALL_COST * 1.9  # one call: 53 %; two: 105 %
    await set_limit(client, limit)

    assert (await execute(client)).status_code == 200
    (half,) = await alerts(services)
    assert half == {
        "threshold": 0.5,
        "spent_usd": pytest.approx(CALL_COST),
        "monthly_limit_usd": limit,
        "period_start": this_month().isoformat(),
    }
    assert (await budget(client))["thresholds_reached"] == [0.5]

    assert (await execute(client)).status_code == 200
    assert [a["threshold"] for a in await alerts(services)] == [0.5, 0.8, 1.0]
    assert_error(await execute(client), 402, "budget_exceeded")
    await set_limit(client, limit, alert_thresholds=[0.5, 0.8, 1.0])  # same limit: no re-firing
    assert len(await alerts(services)) == 3

    # A new limit starts the month's alerts afresh; what is already crossed fires at once.
    raised = await set_limit(client, CALL_COST * 3)
    assert raised["thresholds_reached"] == [0.5]
    assert [a["threshold"] for a in await alerts(services)] == [0.5, 0.8, 1.0, 0.5]


async def test_concurrent_calls_fire_each_threshold_once(
    client: httpx.AsyncClient, services: Services
) -> None:
    await set_limit(client, CALL_COST * 4.5)

    answers = await asyncio.gather(*(execute(client) for _ in range(4)))

    assert [a.status_code for a in answers] == [200] * 4
    assert sorted(a["threshold"] for a in await alerts(services)) == [0.5, 0.8]


async def test_last_months_spend_does_not_count(
    client: httpx.AsyncClient, services: Services
) -> None:
    await spend(services, 100.0, this_month() - dt.timedelta(seconds=1))
    await spend(services, 0.25, this_month())

    data = await set_limit(client, 1)

    assert (data["spent_usd"], data["remaining_usd"], data["exceeded"]) == (0.25, 0.75, False)
    assert (await execute(client)).status_code == 200


async def test_a_new_month_starts_afresh(client: httpx.AsyncClient, services: Services) -> None:
    await set_limit(client, CALL_COST / 2)
    await execute(client)
    assert (await budget(client))["thresholds_reached"] == [0.5, 0.8, 1.0]

    next_month = (this_month() + dt.timedelta(days=32)).replace(day=1)
    services.budgets.clock = lambda: next_month + dt.timedelta(hours=1)

    data = await budget(client)
    assert data["period_start"] == next_month.isoformat().replace("+00:00", "Z")
    assert (data["spent_usd"], data["exceeded"], data["thresholds_reached"]) == (0.0, False, [])
    assert (await execute(client)).status_code == 200  # its row is dated this month

    async with services.db.write() as session:
        await services.budgets.record_usage(
            session,
            [
                UsageRecord(
                    organization_id=ORG,
                    provider_id="openai",
                    model="gpt-4o",
                    modality="text",
                    cost_usd=CALL_COST,
                    created_at=next_month + dt.timedelta(minutes=30),
                )
            ],
        )
    fired = await alerts(services)
    assert [a["threshold"] for a in fired] == [0.5, 0.8, 1.0] * 2
    assert fired[-1]["period_start"] == next_month.isoformat()
    assert_error(await execute(client), 402, "budget_exceeded")


async def test_spending_by_day_and_provider(client: httpx.AsyncClient, services: Services) -> None:
    services.budgets.clock = lambda: dt.datetime(2026, 3, 3, 15, tzinfo=dt.UTC)
    await spend(services, 9.0, dt.datetime(2026, 2, 28, 23, 59, tzinfo=dt.UTC))
    await spend(services, 0.5, dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    await spend(services, 0.25, dt.datetime(2026, 3, 3, 8, tzinfo=dt.UTC))
    async with services.db.write() as session:
        await services.budgets.record_usage(
            session,
            [
                UsageRecord(
                    organization_id=ORG,
                    provider_id="anthropic",
                    model="claude-sonnet-4-0",
                    modality="text",
                    cost_usd=0.125,
                    created_at=dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC),
                )
            ],
        )
    await set_limit(client, 2)

    response = await client.get(SPENDING)

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {
        "organization_id": ORG,
        "period_start": "2026-03-01T00:00:00Z",
        "period_end": "2026-04-01T00:00:00Z",
        "currency": "USD",
        "spent_usd": 0.875,
        "monthly_limit_usd": 2.0,
        "remaining_usd": 1.125,
        "by_day": [
            {"date": "2026-03-01", "executions": 1, "cost_usd": 0.5},
            {"date": "2026-03-02", "executions": 0, "cost_usd": 0.0},
            {"date": "2026-03-03", "executions": 2, "cost_usd": 0.375},
        ],
        "by_provider": [
            {"provider_id": "anthropic", "executions": 1, "cost_usd": 0.125},
            {"provider_id": "openai", "executions": 2, "cost_usd": 0.75},
        ],
    }
