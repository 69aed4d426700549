"""Exactly once: schedulers racing in one process, over separate engines, in separate
processes; and what a restarted server does with the occurrences it missed."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from pathlib import Path

import httpx
import pytest
from schedule_helpers import NOOP, FakeClock, at, harness
from server_helpers import WorkerProcesses, eventually
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from workflow_helpers import app_client, define

from fabric_server.app import create_app
from fabric_server.db.database import Database
from fabric_server.db.types import utcnow
from fabric_server.schedules.models import Schedule, ScheduleFiring
from fabric_server.services import build_services
from fabric_server.settings import Settings
from fabric_server.workflows.models import WorkflowRun

SCHEDULES = 8


async def firings(db: Database, schedule_ids: list[str]) -> list[ScheduleFiring]:
    async with db.read() as session:
        rows = await session.scalars(
            select(ScheduleFiring).where(ScheduleFiring.schedule_id.in_(schedule_ids))
        )
        return list(rows)


async def test_racing_schedulers_over_separate_engines_fire_once(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 00:00:30")) as h:
        wf = await h.definition()
        ids = [(await h.create(wf, "* * * * *"))["id"] for _ in range(SCHEDULES)]
        # A second server's services: its own engine and connection pool on the same database.
        other = build_services(settings.model_copy(update={"scheduler_enabled": False}))
        other.schedules.firer.clock = h.clock
        try:
            schedulers = [
                h.scheduler,
                h.services.schedules.new_scheduler(),
                other.schedules.new_scheduler(),
                other.schedules.new_scheduler(),
            ]
            for minute in (1, 2, 3):
                h.clock.set(at(f"2026-01-01 00:0{minute}"))
                started = await asyncio.gather(*(s.tick() for s in schedulers for _ in range(2)))
                assert sum(started) == SCHEDULES
        finally:
            await other.db.dispose()

        rows = await firings(h.services.db, ids)
        assert len(rows) == 3 * SCHEDULES
        per_occurrence = Counter((row.schedule_id, row.scheduled_for) for row in rows)
        assert set(per_occurrence.values()) == {1}
        runs = await h.runs_of(wf)
        assert sorted(run.id for run in runs) == sorted(row.run_id for row in rows)


async def test_an_occurrence_already_recorded_is_never_fired_again(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 00:00:30")) as h:
        wf = await h.definition()
        schedule = await h.create(wf, "* * * * *")
        h.clock.set(at("2026-01-01 00:01"))
        assert await h.tick() == 1
        # As if a scheduler with a lagging clock had moved the schedule back onto it.
        async with h.services.db.write() as session:
            await session.execute(
                update(Schedule)
                .where(Schedule.id == schedule["id"])
                .values(next_run_at=at("2026-01-01 00:01"))
            )
        assert await h.tick() == 0
        assert (await h.get(schedule["id"]))["next_run_at"] == "2026-01-01T00:02:00Z"
        assert len(await h.runs_of(wf)) == 1

        # And the database itself refuses a second row for the same occurrence.
        with pytest.raises(IntegrityError):
            async with h.services.db.write() as session:
                session.add(
                    ScheduleFiring(
                        schedule_id=schedule["id"],
                        organization_id=schedule["organization_id"],
                        sequence=99,
                        scheduled_for=at("2026-01-01 00:01"),
                        trigger="cron",
                    )
                )


@pytest.mark.parametrize(("policy", "runs"), [("skip", 0), ("latest", 1)])
async def test_a_restarted_server_applies_the_catch_up_policy(
    settings: Settings, policy: str, runs: int
) -> None:
    clock = FakeClock(at("2026-01-01 09:30"))
    first = settings.model_copy(update={"scheduler_enabled": False})
    async with app_client(first) as (client, services):
        services.schedules.firer.clock = clock
        wf = (await define(client, NOOP))["id"]
        created = await client.post(
            f"/v1/workflow-definitions/{wf}/schedules",
            json={"cron_expression": "0 */6 * * *", "catchup_policy": policy},
        )
        schedule_id = created.json()["data"]["id"]

    clock.set(at("2026-01-03 14:00"))  # down for two days and a half
    services = build_services(settings)  # this time the server runs its scheduler
    services.schedules.firer.clock = clock
    app = create_app(services=services)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fabric.test") as c:

            async def history() -> list[dict[str, object]]:
                response = await c.get(f"/v1/schedules/{schedule_id}/history")
                return list(response.json()["data"])

            entries = await eventually(history, lambda found: len(found) == 9)
            schedule = (await c.get(f"/v1/schedules/{schedule_id}")).json()["data"]
    assert schedule["next_run_at"] == "2026-01-03T18:00:00Z"
    newest = entries[0]
    assert newest["scheduled_for"] == "2026-01-03T12:00:00Z"
    assert (newest["run_id"] is not None) == (runs == 1)
    assert [e["reason"] for e in entries[1:]] == ["missed"] * 8
    async with services.db.read() as session:
        count = len(list(await session.scalars(select(WorkflowRun.id))))
    await services.db.dispose()
    assert count == runs


@pytest.fixture
def quiet_settings(settings: Settings) -> Settings:
    """The test's own app fires nothing: only the worker processes do."""
    return settings.model_copy(update={"scheduler_enabled": False, "run_workers": False})


async def test_worker_processes_fire_each_occurrence_once(
    quiet_settings: Settings, database_url: str, tmp_path: Path
) -> None:
    processes = WorkerProcesses(
        database_url,
        tmp_path,
        FABRIC_SCHEDULER_POLL_SECONDS="0.1",
        FABRIC_WORKER_POLL_INTERVAL="0.05",
    )
    try:
        async with app_client(quiet_settings) as (client, services):
            wf = (await define(client, NOOP))["id"]
            ids = []
            for _ in range(SCHEDULES):
                created = await client.post(
                    f"/v1/workflow-definitions/{wf}/schedules",
                    json={"cron_expression": "* * * * *", "catchup_policy": "latest"},
                )
                ids.append(created.json()["data"]["id"])
            # Due now: the current minute, already begun.
            now = utcnow().replace(second=0, microsecond=0)
            async with services.db.write() as session:
                await session.execute(
                    update(Schedule).where(Schedule.id.in_(ids)).values(next_run_at=now)
                )
            for _ in range(3):
                processes.start()

            async def fired() -> list[ScheduleFiring]:
                return await firings(services.db, ids)

            rows = await eventually(
                fired, lambda found: {row.schedule_id for row in found} == set(ids), timeout=60
            )
            processes.close()
            rows = await fired()
            async with services.db.read() as session:
                run_ids = list(
                    await session.scalars(
                        select(WorkflowRun.id).where(WorkflowRun.workflow_definition_id == wf)
                    )
                )
    finally:
        processes.close()
    assert sorted(run_ids) == sorted(row.run_id for row in rows if row.run_id)
    per_occurrence = Counter((row.schedule_id, row.scheduled_for) for row in rows)
    assert set(per_occurrence.values()) == {1}
    assert all(row.scheduled_for >= now - dt.timedelta(minutes=1) for row in rows)
    assert "Traceback" not in processes.logs()
