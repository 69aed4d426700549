"""The provider-call use case on its own (`ProviderCalls`): admit → budget → execute →
record usage, on a real database. The openai provider points at the loopback fake (a
`gpt-4o` call there costs $0.0001); `echo` is free."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_llm import FakeLLM
from sqlalchemy import func, select

from fabric_server.access.principal import Principal
from fabric_server.budgets import repository as budget_repository
from fabric_server.budgets.models import OrganizationBudget
from fabric_server.budgets.service import BudgetExceeded
from fabric_server.orgs.models import Organization
from fabric_server.providers.base import ProviderRequest
from fabric_server.services import Services, build_services
from fabric_server.settings import Settings
from fabric_server.testing import fast_settings
from fabric_server.usage.models import UsageRecord

CALL_COST = 0.0001  # one gpt-4o call against the fake
CALLER = Principal(id="usr-caller", kind="user")


@pytest.fixture
def settings(database_url: str, tmp_path: Path, llm: FakeLLM) -> Settings:
    return fast_settings(
        database_url,
        tmp_path,
        openai_api_key="sk-server-key",
        openai_base_url=llm.openai_base_url,
        provider_retry_base_seconds=0.0,
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    """The services without the app, so their provider clients are closed here."""
    built = build_services(settings)
    yield built
    await built.providers.aclose()
    await built.db.dispose()


async def organization(services: Services, monthly_limit_usd: float | None = None) -> str:
    async with services.db.write() as session:
        org = Organization(slug=f"org-{uuid.uuid4().hex[:8]}", name="Calls")
        session.add(org)
        await session.flush()
        if monthly_limit_usd is not None:
            session.add(
                OrganizationBudget(organization_id=org.id, monthly_limit_usd=monthly_limit_usd)
            )
        return org.id


async def usage_rows(services: Services, org_id: str) -> list[UsageRecord]:
    async with services.db.read() as session:
        rows = await session.scalars(
            select(UsageRecord).where(UsageRecord.organization_id == org_id)
        )
        return list(rows)


async def spent(services: Services, org_id: str) -> float:
    async with services.db.read() as session:
        return await budget_repository.spent(session, org_id, services.budgets.period().start)


def prompt(model: str) -> ProviderRequest:
    return ProviderRequest(modality="text", input={"prompt": "Hello"}, model=model)


async def test_a_call_records_its_usage_once(services: Services) -> None:
    org_id = await organization(services)

    execution = await services.calls.execute(org_id, prompt("echo-1"), None)
    await services.calls.record(execution, org_id, CALLER)

    (row,) = await usage_rows(services, org_id)
    assert (row.provider_id, row.model, row.modality) == ("echo", "echo-1", "text")
    assert (row.principal_id, row.cost_usd) == (CALLER.id, 0.0)
    assert row.output_tokens == execution.result.output_tokens


async def test_a_paid_call_adds_to_the_spend(services: Services, llm: FakeLLM) -> None:
    org_id = await organization(services, monthly_limit_usd=1.0)

    execution = await services.calls.execute(org_id, prompt("gpt-4o"), None)
    await services.calls.record(execution, org_id, CALLER)

    (row,) = await usage_rows(services, org_id)
    assert row.provider_id == "openai"
    assert row.cost_usd == pytest.approx(CALL_COST)
    assert await spent(services, org_id) == pytest.approx(CALL_COST)
    assert len(llm.requests) == 1


async def test_a_call_over_budget_calls_no_provider_and_records_nothing(
    services: Services, llm: FakeLLM
) -> None:
    org_id = await organization(services, monthly_limit_usd=0.0)

    with pytest.raises(BudgetExceeded) as refused:
        await services.calls.execute(org_id, prompt("gpt-4o"), None)

    assert refused.value.code == "budget_exceeded"
    assert refused.value.status_code == 402
    assert (refused.value.details or {})["estimated_cost_usd"] > 0
    assert llm.requests == []
    assert await usage_rows(services, org_id) == []
    async with services.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(UsageRecord)) == 0

    # A free call in the same organization still runs.
    execution = await services.calls.execute(org_id, prompt("echo-1"), None)
    assert execution.result.provider_id == "echo"
