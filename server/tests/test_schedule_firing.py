"""Firing schedules under a test-driven clock: cron times, policies, downtime, disabling."""

from __future__ import annotations

import httpx
from schedule_helpers import APPROVAL, FakeClock, Harness, at, harness, iso, scheduled
from server_helpers import eventually
from sqlalchemy import select
from workflow_helpers import app_client, get_run, wait_for_run

from fabric_server.events.models import Event
from fabric_server.settings import Settings


async def resume(client: httpx.AsyncClient, run_id: str) -> None:
    response = await client.post(f"/v1/workflow-runs/{run_id}/nodes/approval/resume", json={})
    assert response.status_code == 200, response.text


async def test_weekday_schedule_skips_the_weekend(settings: Settings) -> None:
    async with harness(settings, at("2026-11-27 08:59:30")) as h:  # a Friday
        wf = await h.definition()
        schedule = await h.create(wf, "0 9 * * 1-5", input_context={"report": "daily"})
        assert schedule["next_run_at"] == "2026-11-27T09:00:00Z"

        assert await h.tick() == 0  # not yet
        h.clock.set(at("2026-11-27 09:00:00"))
        assert await h.tick() == 1
        assert (await h.get(schedule["id"]))["next_run_at"] == "2026-11-30T09:00:00Z"

        h.clock.set(at("2026-11-28 09:00:00"))  # Saturday
        assert await h.tick() == 0
        h.clock.set(at("2026-11-30 09:00:02"))  # Monday, the scheduler a little late
        assert await h.tick() == 1

        history = await h.history(schedule["id"])
        assert scheduled(history) == ["2026-11-27T09:00:00Z", "2026-11-30T09:00:00Z"]
        assert [entry["trigger"] for entry in history] == ["cron", "cron"]
        runs = await h.runs_of(wf)
        assert [run.id for run in runs] == [entry["run_id"] for entry in history]
        assert all(run.context == {"report": "daily"} for run in runs)
        assert runs[0].run_metadata == {
            "schedule_id": schedule["id"],
            "trigger": "cron",
            "scheduled_for": "2026-11-27T09:00:00+00:00",
        }
        done = await wait_for_run(h.client, runs[1].id)
        assert done["status"] == "completed"
        assert (await h.history(schedule["id"]))[1]["status"] == "completed"
        last = await h.get(schedule["id"])
        assert last["last_run_id"] == runs[1].id
        assert last["last_run_at"] == "2026-11-30T09:00:02Z"


async def test_time_zone_and_spring_forward(settings: Settings) -> None:
    async with harness(settings, at("2026-03-07 12:00")) as h:
        wf = await h.definition()
        schedule = await h.create(wf, "30 2 * * *", timezone="America/New_York")
        # 02:30 does not exist on 2026-03-08 in New York: the first instant after the gap.
        assert schedule["next_run_at"] == "2026-03-08T07:00:00Z"
        h.clock.set(at("2026-03-08 07:00"))
        assert await h.tick() == 1
        assert (await h.get(schedule["id"]))["next_run_at"] == "2026-03-09T06:30:00Z"


async def test_allow_lets_runs_overlap(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 00:00:30")) as h:
        wf = await h.definition(APPROVAL)
        schedule = await h.create(wf, "* * * * *", concurrency_policy="allow")
        for minute in (1, 2):
            h.clock.set(at(f"2026-01-01 00:0{minute}"))
            assert await h.tick() == 1
        history = await h.history(schedule["id"])
        for entry in history:
            await wait_for_run(h.client, entry["run_id"], "waiting")


async def test_skip_drops_occurrences_while_the_previous_run_is_active(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 00:00:30")) as h:
        wf = await h.definition(APPROVAL)
        schedule = await h.create(wf, "* * * * *", concurrency_policy="forbid")
        assert schedule["concurrency_policy"] == "skip"
        h.clock.set(at("2026-01-01 00:01"))
        assert await h.tick() == 1
        first = (await h.history(schedule["id"]))[0]["run_id"]
        await wait_for_run(h.client, first, "waiting")

        h.clock.set(at("2026-01-01 00:02"))
        assert await h.tick() == 0
        skipped = (await h.history(schedule["id"]))[-1]
        assert skipped["status"] == "skipped"
        assert skipped["run_id"] is None
        assert skipped["reason"] == f"the previous run {first} is still waiting"

        # A manual trigger is an explicit request: it runs even now.
        trigger = await h.client.post(f"/v1/schedules/{schedule['id']}/trigger")
        assert trigger.status_code == 202, trigger.text
        manual = trigger.json()["data"]["run_id"]
        await wait_for_run(h.client, manual, "waiting")

        await resume(h.client, first)
        await resume(h.client, manual)
        await wait_for_run(h.client, manual)
        h.clock.set(at("2026-01-01 00:03"))
        assert await h.tick() == 1
        history = await h.history(schedule["id"])
        assert [e["status"] for e in history[:3]] == ["completed", "skipped", "completed"]
        assert [e["trigger"] for e in history] == ["cron", "cron", "manual", "cron"]


async def test_queue_starts_each_run_after_the_previous_one_ends(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 00:00:30")) as h:
        wf = await h.definition(APPROVAL)
        schedule = await h.create(wf, "* * * * *", concurrency_policy="queue")
        for minute in (1, 2, 3, 4):
            h.clock.set(at(f"2026-01-01 00:0{minute}"))
            assert await h.tick() == 1
        history = await h.history(schedule["id"])
        first, second, third, fourth = (entry["run_id"] for entry in history)
        await wait_for_run(h.client, first, "waiting")
        assert [e["status"] for e in history[1:]] == ["pending"] * 3
        assert history[1]["reason"] == f"waiting for run {first} to finish"
        assert (await get_run(h.client, second))["started_at"] is None

        # A waiting run that is cancelled is passed over when its turn comes.
        cancel = await h.client.post(f"/v1/workflow-runs/{third}/cancel", json={})
        assert cancel.status_code == 200, cancel.text

        await resume(h.client, first)
        await wait_for_run(h.client, first)
        assert await h.tick() == 1  # releases the second
        await wait_for_run(h.client, second, "waiting")
        assert (await get_run(h.client, fourth))["status"] == "pending"
        assert await h.tick() == 0

        await resume(h.client, second)
        await wait_for_run(h.client, second)
        assert await h.tick() == 1  # the third was cancelled: the fourth goes
        await wait_for_run(h.client, fourth, "waiting")
        history = await h.history(schedule["id"])
        assert [e["status"] for e in history] == ["completed", "completed", "cancelled", "waiting"]
        assert history[1]["reason"] == f"waited for run {first}"

        # A manual trigger under `queue` waits its turn too.
        trigger = await h.client.post(f"/v1/schedules/{schedule['id']}/trigger")
        assert trigger.json()["data"]["held"] is True


async def test_queued_runs_start_as_soon_as_the_previous_ends(settings: Settings) -> None:
    # With the scheduler running in the app, the end of a run (an event) wakes it at once,
    # long before its poll interval.
    slow = settings.model_copy(update={"scheduler_poll_seconds": 60.0})
    async with app_client(slow) as (client, services):
        clock = FakeClock(at("2026-01-01 00:00:30"))
        services.schedules.firer.clock = clock
        h = Harness(client, services, clock, services.schedules.new_scheduler())
        wf = await h.definition(APPROVAL)
        schedule = await h.create(wf, "* * * * *", concurrency_policy="queue")
        for minute in (1, 2):
            clock.set(at(f"2026-01-01 00:0{minute}"))
            await h.tick()  # the app's own scheduler may be the one to fire: either is fine
            await eventually(lambda: h.history(schedule["id"]), lambda e: len(e) == minute)
        first, second = (entry["run_id"] for entry in await h.history(schedule["id"]))
        await wait_for_run(client, first, "waiting")
        await resume(client, first)
        await wait_for_run(client, second, "waiting", timeout=10)


async def test_catch_up_skip_records_missed_occurrences(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 09:59:30")) as h:
        wf = await h.definition()
        schedule = await h.create(wf, "0 * * * *")
        assert schedule["catchup_policy"] == "skip"
        h.clock.set(at("2026-01-01 10:00"))
        assert await h.tick() == 1

        h.clock.set(at("2026-01-04 10:30"))  # three days without a scheduler
        assert await h.tick() == 0
        history = await h.history(schedule["id"])
        missed = history[1:]
        assert len(missed) == 72
        assert {e["status"] for e in missed} == {"skipped"}
        assert {e["reason"] for e in missed} == {"missed"}
        assert missed[0]["scheduled_for"] == "2026-01-01T11:00:00Z"
        assert missed[-1]["scheduled_for"] == "2026-01-04T10:00:00Z"
        assert (await h.get(schedule["id"]))["next_run_at"] == "2026-01-04T11:00:00Z"

        h.clock.set(at("2026-01-04 11:00"))
        assert await h.tick() == 1
        assert len(await h.runs_of(wf)) == 2


async def test_catch_up_latest_fires_once_for_the_newest_missed(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 09:59:30")) as h:
        wf = await h.definition()
        schedule = await h.create(wf, "0 * * * *", catchup_policy="latest")
        h.clock.set(at("2026-01-04 10:30"))
        assert await h.tick() == 1
        history = await h.history(schedule["id"])
        fired = history[-1]
        assert fired["scheduled_for"] == "2026-01-04T10:00:00Z"
        assert fired["reason"] == "fired late: caught up after downtime"
        assert fired["run_id"]
        assert len(history) == 73  # 72 missed + the one fired
        assert len(await h.runs_of(wf)) == 1
        assert await h.tick() == 0


async def test_at_most_a_hundred_missed_occurrences_are_recorded(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 00:00:30")) as h:
        wf = await h.definition()
        schedule = await h.create(wf, "* * * * *")
        h.clock.set(at("2026-01-03 00:00:30"))  # two days of minutes missed
        assert await h.tick() == 1  # 00:00 is within the grace period: it fires
        history = await h.history(schedule["id"])
        assert len(history) == 101
        assert history[0]["scheduled_for"] == "2026-01-02T22:20:00Z"  # the newest 100
        assert history[-1]["scheduled_for"] == "2026-01-03T00:00:00Z"
        assert history[-1]["reason"] is None


async def test_disabled_schedules_never_fire(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 00:00:30")) as h:
        wf = await h.definition()
        schedule = await h.create(wf, "* * * * *", enabled=False)
        assert schedule["next_run_at"] is None
        h.clock.advance(days=2)
        assert await h.tick() == 0

        enabled = await h.patch(schedule["id"], enabled=True)
        assert enabled["next_run_at"] == iso(at("2026-01-03 00:01"))  # from now: nothing missed
        disabled = await h.patch(schedule["id"], enabled=False)
        assert disabled["next_run_at"] is None
        h.clock.advance(minutes=5)
        assert await h.tick() == 0
        assert await h.history(schedule["id"]) == []


async def test_retiming_starts_from_now(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 00:00:30")) as h:
        wf = await h.definition()
        schedule = await h.create(wf, "0 9 * * *")
        changed = await h.patch(schedule["id"], cron_expression="0 8 * * *", timezone="Asia/Tokyo")
        assert changed["next_run_at"] == "2026-01-01T23:00:00Z"
        unchanged = await h.patch(schedule["id"], description="Tokyo mornings")
        assert unchanged["next_run_at"] == "2026-01-01T23:00:00Z"


async def test_deleting_stops_firing_and_cancels_waiting_runs(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 00:00:30")) as h:
        wf = await h.definition(APPROVAL)
        schedule = await h.create(wf, "* * * * *", concurrency_policy="queue")
        for minute in (1, 2):
            h.clock.set(at(f"2026-01-01 00:0{minute}"))
            assert await h.tick() == 1
        first, waiting = (run.id for run in await h.runs_of(wf))
        await wait_for_run(h.client, first, "waiting")

        deleted = await h.client.delete(f"/v1/schedules/{schedule['id']}")
        assert deleted.status_code == 200, deleted.text
        h.clock.advance(minutes=10)
        assert await h.tick() == 0
        assert len(await h.runs_of(wf)) == 2
        assert (await get_run(h.client, first))["status"] == "waiting"  # runs stay
        assert (await get_run(h.client, waiting))["status"] == "cancelled"
        gone = await h.client.get(f"/v1/schedules/{schedule['id']}/history")
        assert gone.status_code == 404


async def test_manual_trigger_is_recorded(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 00:00:30")) as h:
        wf = await h.definition()
        schedule = await h.create(wf, "0 0 1 1 *", enabled=False, priority=7)
        response = await h.client.post(f"/v1/schedules/{schedule['id']}/trigger")
        assert response.status_code == 202, response.text
        trigger = response.json()["data"]
        assert trigger["schedule_id"] == schedule["id"]
        assert trigger["trigger"] == "manual"
        assert trigger["triggered_at"] == "2026-01-01T00:00:30Z"
        run = await wait_for_run(h.client, trigger["run_id"])
        assert run["status"] == "completed"
        assert run["priority"] == 7
        history = await h.history(schedule["id"])
        assert history == [
            {
                "id": history[0]["id"],
                "schedule_id": schedule["id"],
                "run_id": trigger["run_id"],
                "scheduled_for": None,
                "fired_at": "2026-01-01T00:00:30Z",
                "triggered_at": "2026-01-01T00:00:30Z",
                "trigger": "manual",
                "status": "completed",
                "reason": None,
            }
        ]
        # Manual triggers never use up a cron occurrence: several may share an instant.
        again = await h.client.post(f"/v1/schedules/{schedule['id']}/trigger")
        assert again.status_code == 202
        assert len(await h.history(schedule["id"])) == 2


async def test_firing_events(settings: Settings) -> None:
    async with harness(settings, at("2026-01-01 00:00:30")) as h:
        wf = await h.definition(APPROVAL)
        schedule = await h.create(wf, "* * * * *", concurrency_policy="skip")
        for minute in (1, 2):
            h.clock.set(at(f"2026-01-01 00:0{minute}"))
            await h.tick()
        await h.patch(schedule["id"], priority=3)
        await h.client.delete(f"/v1/schedules/{schedule['id']}")

        async def kinds() -> list[str]:
            async with h.services.db.read() as session:
                rows = await session.scalars(
                    select(Event.kind).where(Event.kind.like("schedule.%")).order_by(Event.seq)
                )
                return list(rows)

        assert await eventually(kinds, lambda k: len(k) == 5) == [
            "schedule.created",
            "schedule.fired",
            "schedule.skipped",
            "schedule.updated",
            "schedule.deleted",
        ]
