"""Firing schedules: one transaction per firing, made idempotent by the database.

A due schedule is fired in a single transaction that locks its row, records the occurrence in
the history (unique per schedule and cron time), creates and queues the run, and moves
`next_run_at` on. A second scheduler racing for the same schedule either skips the locked row
(PostgreSQL), waits for the first and then finds it no longer due, or — if it got past both —
fails on the unique key and rolls back; the next pass sees the occurrence recorded and moves on.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.database import Database
from fabric_server.db.types import utcnow
from fabric_server.events.outbox import EventRecorder
from fabric_server.orgs import repository as orgs
from fabric_server.schedules import repository
from fabric_server.schedules.cron import CronError
from fabric_server.schedules.models import Schedule, ScheduleFiring
from fabric_server.schedules.timing import CronSchedule, TimezoneError
from fabric_server.workflows import repository as workflow_repository
from fabric_server.workflows.launch import RunLauncher
from fabric_server.workflows.models import WorkflowRun
from fabric_server.workflows.status import RunStatus

Clock = Callable[[], dt.datetime]
log = logging.getLogger("fabric_server.schedules")

# At most this many missed occurrences are written to the history per catch-up (the newest).
MAX_MISSED_RECORDED = 100
MISSED = "missed"
# A held run still waiting for its turn: created, not yet queued (perhaps paused meanwhile).
HELD_STATUSES = (RunStatus.PENDING, RunStatus.PAUSED)


@dataclass(frozen=True)
class CatchUp:
    """What to do with a due schedule: the occurrence to fire (if any), the missed ones to
    record as skipped (newest first), and the next occurrence to wait for."""

    fire: dt.datetime | None
    late: bool
    missed: list[dt.datetime] = field(default_factory=list)
    next_run_at: dt.datetime | None = None


def plan_catch_up(
    cron: CronSchedule,
    next_run_at: dt.datetime,
    now: dt.datetime,
    policy: str,
    grace: dt.timedelta,
) -> CatchUp:
    """Every occurrence from `next_run_at` up to `now` is due. The newest fires if it is at
    most `grace` old (the scheduler was merely a little late) or the policy is `latest`;
    all others were missed."""
    due = cron.latest_until(now, next_run_at, MAX_MISSED_RECORDED + 1)
    following = cron.next_after(now)
    if not due:
        return CatchUp(None, False, [], following)
    newest, older = due[0], due[1:]
    on_time = now - newest <= grace
    if on_time or policy == "latest":
        return CatchUp(newest, not on_time, older[:MAX_MISSED_RECORDED], following)
    return CatchUp(None, True, due[:MAX_MISSED_RECORDED], following)


class ScheduleFirer:
    """Fires schedules and releases the runs that wait their turn. Owns the clock every
    schedule computation uses (injectable, so tests never wait for real minutes)."""

    def __init__(
        self,
        db: Database,
        events: EventRecorder,
        launcher: RunLauncher,
        *,
        misfire_grace_seconds: float = 60.0,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.events = events
        self.launcher = launcher
        self.grace = dt.timedelta(seconds=misfire_grace_seconds)
        self.clock = clock
        # Whether some run waits for its predecessor (as last seen by this process): while it
        # does, schedulers look again whenever an event is committed, as a run may have ended.
        self.runs_waiting = False

    # -- cron firing ------------------------------------------------------------------------

    async def fire_due(self, schedule_id: str) -> int:
        """Handle the schedule if it is due: record missed occurrences, fire the one that is
        on time (or caught up), advance `next_run_at`. Returns how many runs it started (0/1)."""
        now = self.clock()
        async with self.db.write() as session:
            schedule = await repository.lock_due(
                session, schedule_id, now, skip_locked=not self.db.is_sqlite
            )
            if schedule is None or schedule.next_run_at is None:
                return 0  # not due (any more), or being fired by another scheduler
            try:
                cron = CronSchedule.parse(schedule.cron_expression, schedule.timezone)
            except (CronError, TimezoneError) as exc:
                # Only possible if the zone database changed under a stored schedule.
                log.error("schedule %s cannot be evaluated (%s); it stops firing", schedule.id, exc)
                schedule.next_run_at = None
                return 0
            plan = plan_catch_up(
                cron, schedule.next_run_at, now, schedule.catchup_policy, self.grace
            )
            wanted = [*plan.missed, *([plan.fire] if plan.fire else [])]
            recorded = await repository.recorded_occurrences(session, schedule.id, wanted)
            for missed in reversed(plan.missed):  # oldest first: history reads in time order
                if missed not in recorded:
                    await self._skip(session, schedule, missed, "cron", now, MISSED)
            started = 0
            if plan.fire is not None and plan.fire not in recorded:
                reason = "fired late: caught up after downtime" if plan.late else None
                firing = await self.fire(
                    session, schedule, trigger="cron", scheduled_for=plan.fire, now=now, note=reason
                )
                started = 1 if firing.run_id else 0
            schedule.next_run_at = plan.next_run_at
        return started

    async def fire(
        self,
        session: AsyncSession,
        schedule: Schedule,
        *,
        trigger: str,
        scheduled_for: dt.datetime | None,
        now: dt.datetime,
        principal_id: str | None = None,
        note: str | None = None,
    ) -> ScheduleFiring:
        """Start a run of the schedule (the caller holds the schedule's row lock), applying
        the concurrency policy; the history row is written first so the unique key decides
        before anything else happens. A manual trigger is never skipped: under `skip` it
        runs anyway, under `queue` it waits its turn like any other run. Cron firings of an
        archived organization are recorded as skipped."""
        if trigger == "cron" and await orgs.archived(session, schedule.organization_id):
            reason = "the organization is archived"
            return await self._skip(session, schedule, scheduled_for, trigger, now, reason)
        previous = await _previous_run(session, schedule)
        busy = previous is not None and not previous.status.is_terminal
        policy = schedule.concurrency_policy
        if busy and previous is not None and policy == "skip" and trigger == "cron":
            reason = f"the previous run {previous.id} is still {previous.status}"
            return await self._skip(session, schedule, scheduled_for, trigger, now, reason)
        held = busy and previous is not None and policy == "queue"
        firing = await self._record(session, schedule, scheduled_for, trigger, now)
        definition = await workflow_repository.get_definition(
            session, schedule.workflow_definition_id
        )
        if definition is None:  # pragma: no cover - the foreign key cascades schedules away
            raise LookupError(f"workflow definition {schedule.workflow_definition_id} is gone")
        run = await self.launcher.create_run(
            session,
            definition,
            context=copy.deepcopy(schedule.input_context),
            created_by=principal_id or schedule.created_by,
            priority=schedule.priority,
            metadata={
                "schedule_id": schedule.id,
                "trigger": trigger,
                "scheduled_for": scheduled_for.isoformat() if scheduled_for else None,
            },
        )
        if held and previous is not None:
            self.runs_waiting = True
            firing.held = True
            firing.reason = f"waiting for run {previous.id} to finish"
        else:
            await self.launcher.queue_run(session, run)
            firing.reason = note
        firing.run_id = run.id
        schedule.last_run_id = run.id
        schedule.last_run_at = now
        await self._event(
            session,
            schedule,
            "schedule.fired",
            _firing_payload(firing) | {"workflow_definition_id": schedule.workflow_definition_id},
        )
        return firing

    # -- queue policy ----------------------------------------------------------------------

    async def release_held(self) -> int:
        """Start the next waiting run of every schedule whose previous run has ended."""
        async with self.db.read() as session:
            schedule_ids = await repository.schedules_with_held_runs(session)
        released = 0
        for schedule_id in schedule_ids:
            try:
                released += await self._release(schedule_id)
            except Exception:
                log.exception("releasing the waiting runs of schedule %s failed", schedule_id)
        return released

    async def _release(self, schedule_id: str) -> int:
        async with self.db.write() as session:
            if await repository.lock(session, schedule_id) is None:
                return 0
            for firing in await repository.held_firings(session, schedule_id):
                before = await repository.run_before(session, schedule_id, firing.sequence)
                if before is not None and not before.status.is_terminal:
                    return 0  # still running: this one keeps waiting
                firing.held = False
                firing.reason = f"waited for run {before.id}" if before else None
                run = await workflow_repository.lock_run(session, firing.run_id or "")
                if run is not None and run.queued_at is None and run.status in HELD_STATUSES:
                    await self.launcher.queue_run(session, run)  # a paused one starts on resume
                    return 1
                # Cancelled (or started by hand) while waiting: the next one may go.
            return 0

    # -- history rows ------------------------------------------------------------------------

    async def _record(
        self,
        session: AsyncSession,
        schedule: Schedule,
        scheduled_for: dt.datetime | None,
        trigger: str,
        now: dt.datetime,
        reason: str | None = None,
    ) -> ScheduleFiring:
        schedule.fire_count += 1
        firing = ScheduleFiring(
            schedule_id=schedule.id,
            organization_id=schedule.organization_id,
            sequence=schedule.fire_count,
            scheduled_for=scheduled_for,
            fired_at=now,
            trigger=trigger,
            held=False,
            reason=reason,
        )
        session.add(firing)
        await session.flush()  # the unique key on (schedule, cron time) is checked here
        return firing

    async def _skip(
        self,
        session: AsyncSession,
        schedule: Schedule,
        scheduled_for: dt.datetime | None,
        trigger: str,
        now: dt.datetime,
        reason: str,
    ) -> ScheduleFiring:
        firing = await self._record(session, schedule, scheduled_for, trigger, now, reason)
        await self._event(session, schedule, "schedule.skipped", _firing_payload(firing))
        return firing

    async def _event(
        self, session: AsyncSession, schedule: Schedule, kind: str, payload: dict[str, Any]
    ) -> None:
        await self.events.record(
            session, kind, organization_id=schedule.organization_id, payload=payload
        )


async def _previous_run(session: AsyncSession, schedule: Schedule) -> WorkflowRun | None:
    if schedule.last_run_id is None:
        return None
    return await workflow_repository.get_run(session, schedule.last_run_id)


def _firing_payload(firing: ScheduleFiring) -> dict[str, Any]:
    return {
        "schedule_id": firing.schedule_id,
        "history_id": firing.id,
        "run_id": firing.run_id,
        "scheduled_for": firing.scheduled_for.isoformat() if firing.scheduled_for else None,
        "fired_at": firing.fired_at.isoformat(),
        "trigger": firing.trigger,
        "held": firing.held,
        "reason": firing.reason,
    }
