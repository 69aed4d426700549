"""The SDK's schedules surface, as the product spec writes it, against a real server."""

from __future__ import annotations

import pytest

from fabric_platform import (
    AsyncFabricClient,
    FabricClient,
    FabricNotFoundError,
    FabricValidationError,
)
from fabric_server.testing import LiveServer

NODES = [{"key": "step", "operation": "workflow.noop"}]


def test_spec_schedules_snippet(server: LiveServer) -> None:
    fabric = FabricClient(base_url=server.base_url)
    wf_id = fabric.upsert_workflow(name="daily-report", nodes=NODES)

    # Create cron schedule for a workflow
    schedule = fabric.create_schedule(
        workflow_definition_id=wf_id,
        cron_expression="0 9 * * 1-5",  # weekdays at 9am
    )

    # Manage
    schedules = fabric.list_schedules(wf_id)
    fabric.update_schedule(schedule["id"], cron_expression="0 8 * * *")
    fabric.trigger_schedule(schedule["id"])  # manual trigger
    history = fabric.schedule_history(schedule["id"])
    fabric.delete_schedule(schedule["id"])

    assert [s["id"] for s in schedules] == [schedule["id"]]
    assert schedules[0]["cron_expression"] == "0 9 * * 1-5"
    assert schedule["next_run_at"].endswith("T09:00:00Z")
    assert len(history) == 1
    assert history[0]["trigger"] == "manual"
    run = fabric.wait_for_run(history[0]["run_id"], poll_interval=0.05, timeout=30)
    assert run["status"] == "completed"
    with pytest.raises(FabricNotFoundError):
        fabric.get_schedule(schedule["id"])
    fabric.close()


def test_options_and_errors(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        wf_id = fabric.upsert_workflow(name="tz-report", nodes=NODES)
        schedule = fabric.create_schedule(
            wf_id,
            "30 2 * * *",
            timezone="America/New_York",
            input_context={"region": "us"},
            concurrency_policy="queue",
            catchup_policy="latest",
            enabled=False,
        )
        assert schedule["next_run_at"] is None
        enabled = fabric.update_schedule(schedule["id"], enabled=True)
        assert enabled["next_run_at"] is not None
        assert fabric.get_schedule(schedule["id"])["timezone"] == "America/New_York"

        with pytest.raises(FabricValidationError, match="minute: 75 is out of range"):
            fabric.create_schedule(wf_id, "75 * * * *")
        with pytest.raises(FabricValidationError, match="IANA"):
            fabric.update_schedule(schedule["id"], timezone="Atlantis/Capital")

        triggered = fabric.trigger_schedule(schedule["id"])
        run = fabric.get_run(triggered["run_id"])
        assert run["context"] == {"region": "us"}
        assert run["metadata"]["schedule_id"] == schedule["id"]


async def test_async_client(server: LiveServer) -> None:
    async with AsyncFabricClient(base_url=server.base_url) as fabric:
        wf_id = await fabric.upsert_workflow(name="async-report", nodes=NODES)
        schedule = await fabric.create_schedule(wf_id, "@hourly")
        for _ in range(3):
            await fabric.trigger_schedule(schedule["id"])
        first = await fabric.schedule_history(schedule["id"], limit=2)
        rest = await fabric.schedule_history(schedule["id"], limit=2, cursor=first[-1]["id"])
        assert len(first) == 2
        assert len(rest) == 1
        assert (await fabric.delete_schedule(schedule["id"]))["deleted"] is True
        assert await fabric.list_schedules(wf_id) == []
