"""Schedules (wire-spec §9.6): paths, bodies and return values, sync and async."""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx
import pytest

from fabric_platform import AsyncFabricClient, FabricClient, FabricServerError

from .helpers import Script, fail, ok

MakeClient = Callable[..., FabricClient]
MakeAsyncClient = Callable[..., AsyncFabricClient]
SCHEDULE = {"id": "sch-1", "workflow_definition_id": "wf-1", "cron_expression": "0 9 * * 1-5"}
TRIGGER = {"run_id": "run-1", "schedule_id": "sch-1", "triggered_at": "t", "trigger": "manual"}
HISTORY = [{"id": "h-2", "run_id": "run-2", "status": "completed", "trigger": "cron"}]


def body(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


def calls(script: Script) -> list[tuple[str, str, str, Any]]:
    return [(r.method, r.url.path, r.url.query.decode(), body(r)) for r in script.requests]


def test_the_spec_snippet_sends_the_reference_calls(make_client: MakeClient) -> None:
    script = Script(
        ok(SCHEDULE, status=201),
        ok([SCHEDULE]),
        ok(SCHEDULE),
        ok(TRIGGER, 202),
        ok(HISTORY),
        ok({"id": "sch-1", "deleted": True}),
    )
    fabric = make_client(script)
    wf_id = "wf-1"

    schedule = fabric.create_schedule(
        workflow_definition_id=wf_id,
        cron_expression="0 9 * * 1-5",  # weekdays at 9am
    )
    schedules = fabric.list_schedules(wf_id)
    fabric.update_schedule(schedule["id"], cron_expression="0 8 * * *")
    fabric.trigger_schedule(schedule["id"])  # manual trigger
    history = fabric.schedule_history(schedule["id"])
    fabric.delete_schedule(schedule["id"])

    assert schedules == [SCHEDULE]
    assert history == HISTORY
    assert calls(script) == [
        ("POST", "/v1/workflow-definitions/wf-1/schedules", "", {"cron_expression": "0 9 * * 1-5"}),
        ("GET", "/v1/workflow-definitions/wf-1/schedules", "", None),
        ("PATCH", "/v1/schedules/sch-1", "", {"cron_expression": "0 8 * * *"}),
        ("POST", "/v1/schedules/sch-1/trigger", "", None),
        ("GET", "/v1/schedules/sch-1/history", "", None),
        ("DELETE", "/v1/schedules/sch-1", "", None),
    ]


def test_create_sends_the_optional_fields_as_given(make_client: MakeClient) -> None:
    script = Script(ok(SCHEDULE, status=201))
    fabric = make_client(script)

    fabric.create_schedule(
        "wf/1",
        "@daily",
        timezone="Europe/Berlin",
        input_context={"topic": "news"},
        enabled=False,
        concurrency_policy="queue",
        catchup_policy="latest",
        priority=3,
        description=None,
    )

    assert script.last.url.raw_path == b"/v1/workflow-definitions/wf%2F1/schedules"
    assert body(script.last) == {
        "cron_expression": "@daily",
        "timezone": "Europe/Berlin",
        "input_context": {"topic": "news"},
        "enabled": False,
        "concurrency_policy": "queue",
        "catchup_policy": "latest",
        "priority": 3,
        "description": None,
    }


def test_get_and_history_paging(make_client: MakeClient) -> None:
    script = Script(ok(SCHEDULE), ok(HISTORY))
    fabric = make_client(script)

    assert fabric.get_schedule("sch-1") == SCHEDULE
    fabric.schedule_history("sch-1", limit=10, cursor="h-9")

    assert calls(script)[1] == ("GET", "/v1/schedules/sch-1/history", "limit=10&cursor=h-9", None)


def test_a_failed_trigger_is_not_resent(make_client: MakeClient) -> None:
    script = Script(fail(503, "unavailable", "down"))
    fabric = make_client(script)

    with pytest.raises(FabricServerError):
        fabric.trigger_schedule("sch-1")
    assert len(script.requests) == 1


def test_identifiers_must_be_given(make_client: MakeClient) -> None:
    fabric = make_client(Script(ok(SCHEDULE)))
    with pytest.raises(ValueError, match="non-empty"):
        fabric.get_schedule("")


async def test_async_twin(make_async_client: MakeAsyncClient) -> None:
    script = Script(
        ok(SCHEDULE, status=201),
        ok([SCHEDULE]),
        ok(SCHEDULE),
        ok(SCHEDULE),
        ok(TRIGGER, 202),
        ok(HISTORY),
        ok({"id": "sch-1", "deleted": True}),
    )
    fabric = make_async_client(script)

    schedule = await fabric.create_schedule("wf-1", "0 9 * * 1-5", timezone="UTC")
    assert await fabric.list_schedules("wf-1") == [SCHEDULE]
    assert await fabric.get_schedule(schedule["id"]) == SCHEDULE
    await fabric.update_schedule(schedule["id"], enabled=False)
    assert await fabric.trigger_schedule(schedule["id"]) == TRIGGER
    assert await fabric.schedule_history(schedule["id"], limit=5) == HISTORY
    assert await fabric.delete_schedule(schedule["id"]) == {"id": "sch-1", "deleted": True}

    assert calls(script) == [
        (
            "POST",
            "/v1/workflow-definitions/wf-1/schedules",
            "",
            {"cron_expression": "0 9 * * 1-5", "timezone": "UTC"},
        ),
        ("GET", "/v1/workflow-definitions/wf-1/schedules", "", None),
        ("GET", "/v1/schedules/sch-1", "", None),
        ("PATCH", "/v1/schedules/sch-1", "", {"enabled": False}),
        ("POST", "/v1/schedules/sch-1/trigger", "", None),
        ("GET", "/v1/schedules/sch-1/history", "limit=5", None),
        ("DELETE", "/v1/schedules/sch-1", "", None),
    ]
