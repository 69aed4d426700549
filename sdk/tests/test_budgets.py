"""The budget methods: paths and bodies on both clients, and the 402 they may meet."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from fabric_platform import AsyncFabricClient, FabricBudgetExceededError, FabricClient

from .helpers import Script, fail, ok

MakeClient = Callable[..., FabricClient]
MakeAsyncClient = Callable[..., AsyncFabricClient]

BUDGET = {"organization_id": "org-1", "monthly_limit_usd": 25.0, "exceeded": False}


def body_of(script: Script) -> Any:
    return json.loads(script.last.content)


def test_get_set_and_clear_a_budget(make_client: MakeClient) -> None:
    script = Script(ok(BUDGET))
    client = make_client(script)

    assert client.get_budget("org-1") == BUDGET
    assert (script.last.method, script.last.url.path) == ("GET", "/v1/organizations/org-1/budget")

    client.set_budget("org-1", 25.0)
    assert (script.last.method, script.last.url.path) == ("PUT", "/v1/organizations/org-1/budget")
    assert body_of(script) == {"monthly_limit_usd": 25.0}

    client.set_budget("org-1", 25, alert_thresholds=[0.75, 1.0])
    assert body_of(script) == {"monthly_limit_usd": 25, "alert_thresholds": [0.75, 1.0]}

    client.set_budget("org/1", None)  # null removes the limit
    assert body_of(script) == {"monthly_limit_usd": None}
    assert script.last.url.raw_path == b"/v1/organizations/org%2F1/budget"


def test_spending(make_client: MakeClient) -> None:
    spending = {"spent_usd": 1.5, "by_day": [], "by_provider": []}
    script = Script(ok(spending))
    client = make_client(script)

    assert client.get_org_spending("org-1") == spending
    assert script.last.url.path == "/v1/organizations/org-1/usage/spending"


def test_budget_exceeded_is_its_own_error(make_client: MakeClient) -> None:
    details = {"monthly_limit_usd": 10.0, "spent_usd": 10.2}
    script = Script(fail(402, "budget_exceeded", "The monthly budget is spent", details=details))
    client = make_client(script)

    with pytest.raises(FabricBudgetExceededError) as info:
        client.execute_provider("text", {"prompt": "Hi"}, model="gpt-4o")

    assert (info.value.status_code, info.value.code) == (402, "budget_exceeded")
    assert info.value.details == details
    assert len(script.requests) == 1  # not retried: waiting does not help


async def test_async_twins(make_async_client: MakeAsyncClient) -> None:
    script = Script(ok(BUDGET))
    client = make_async_client(script)

    assert await client.get_budget("org-1") == BUDGET
    assert script.last.url.path == "/v1/organizations/org-1/budget"
    await client.set_budget("org-1", None, alert_thresholds=[0.5])
    assert script.last.method == "PUT"
    assert body_of(script) == {"monthly_limit_usd": None, "alert_thresholds": [0.5]}
    await client.get_org_spending("org-1")
    assert script.last.url.path == "/v1/organizations/org-1/usage/spending"

    client_402 = make_async_client(Script(fail(402, "budget_exceeded", "spent")))
    with pytest.raises(FabricBudgetExceededError):
        await client_402.create_job(modality="text", input={"prompt": "Hi"}, tier="premium")
