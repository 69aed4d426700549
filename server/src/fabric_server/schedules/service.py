"""Business rules for schedules: validation, visibility, changes, manual triggers, history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.access.service import Access
from fabric_server.db.database import after_commit
from fabric_server.errors import NotFound, Unprocessable, ValidationFailed
from fabric_server.paging import InvalidCursor
from fabric_server.schedules import repository
from fabric_server.schedules.cron import CronError
from fabric_server.schedules.firing import ScheduleFirer
from fabric_server.schedules.models import Schedule, ScheduleFiring
from fabric_server.schedules.schemas import ScheduleCreate, ScheduleUpdate
from fabric_server.schedules.timing import CronSchedule, TimezoneError, canonical_timezone
from fabric_server.schedules.views import schedule_out
from fabric_server.workflows import repository as workflow_repository
from fabric_server.workflows.lifecycle import RunLifecycle

MANAGE = "schedule.manage"
READ = "workflow.read"
_NOT_NULL = (
    "cron_expression",
    "timezone",
    "input_context",
    "enabled",
    "concurrency_policy",
    "catchup_policy",
    "priority",
)


class ScheduleService:
    def __init__(self, access: Access, firer: ScheduleFirer, lifecycle: RunLifecycle) -> None:
        self.access = access
        self.firer = firer
        self.lifecycle = lifecycle
        self._wakers: list[Callable[[], None]] = []

    def on_change(self, wake: Callable[[], None]) -> None:
        """Register a callback run after a transaction that changed a schedule commits."""
        self._wakers.append(wake)

    async def create(
        self, session: AsyncSession, principal: Principal, definition_id: str, body: ScheduleCreate
    ) -> Schedule:
        if body.workflow_definition_id not in (None, definition_id):
            raise _invalid(
                "workflow_definition_id",
                "workflow_definition_id does not match the path",
                Unprocessable,
            )
        definition = await workflow_repository.get_definition(session, definition_id)
        missing = NotFound(f"Workflow definition {definition_id} was not found.")
        if definition is None:
            raise missing
        try:
            await self.access.authorize(session, principal, definition.organization_id, MANAGE)
        except NotFound:
            raise missing from None
        cron, timezone = _timing(body.cron_expression, body.timezone)
        schedule = Schedule(
            organization_id=definition.organization_id,
            workflow_definition_id=definition.id,
            cron_expression=cron.expression.text,
            timezone=timezone,
            enabled=body.enabled,
            concurrency_policy=body.concurrency_policy,
            catchup_policy=body.catchup_policy,
            input_context=body.input_context,
            priority=body.priority,
            description=body.description,
            next_run_at=cron.next_after(self.firer.clock()) if body.enabled else None,
            fire_count=0,
            created_by=principal.id,
        )
        session.add(schedule)
        await session.flush()
        await self._event(
            session,
            schedule,
            "schedule.created",
            {"schedule": schedule_out(schedule).model_dump(mode="json")},
        )
        return schedule

    async def update(
        self, session: AsyncSession, principal: Principal, schedule_id: str, body: ScheduleUpdate
    ) -> Schedule:
        schedule = await self._visible(session, principal, schedule_id, MANAGE, lock=True)
        changes = body.model_dump(exclude_unset=True)
        for name in _NOT_NULL:
            if name in changes and changes[name] is None:
                raise _invalid(name, f"{name} cannot be null")
        was_enabled = schedule.enabled
        retime = "cron_expression" in changes or "timezone" in changes
        cron, timezone = _timing(
            changes.get("cron_expression", schedule.cron_expression),
            changes.get("timezone", schedule.timezone),
        )
        for name, value in changes.items():
            setattr(schedule, name, value)
        schedule.cron_expression = cron.expression.text
        schedule.timezone = timezone
        if not schedule.enabled:
            schedule.next_run_at = None
        elif retime or not was_enabled:
            # From now on: a disabled stretch is not "missed", and a new expression starts fresh.
            schedule.next_run_at = cron.next_after(self.firer.clock())
        await session.flush()
        await self._event(
            session,
            schedule,
            "schedule.updated",
            {
                "schedule": schedule_out(schedule).model_dump(mode="json"),
                "changed": sorted(changes),
            },
        )
        return schedule

    async def delete(self, session: AsyncSession, principal: Principal, schedule_id: str) -> None:
        """Future firings stop and the history goes with the schedule; its runs stay. Runs
        still waiting their turn (`queue`) never started, and are cancelled."""
        schedule = await self._visible(session, principal, schedule_id, MANAGE, lock=True)
        reason = f"schedule {schedule.id} was deleted"
        held = sorted(
            f.run_id for f in await repository.held_firings(session, schedule.id) if f.run_id
        )
        # Every row lock before the first event (which takes the event-order lock), in id order.
        runs = [await workflow_repository.lock_run(session, run_id) for run_id in held]
        for run in runs:
            if run is not None and not run.status.is_terminal:
                nodes = await workflow_repository.nodes_of(session, run.id)
                await self.lifecycle.cancel_run(session, run, nodes, reason)
        payload = {
            "schedule_id": schedule.id,
            "workflow_definition_id": schedule.workflow_definition_id,
        }
        await repository.delete_schedule(session, schedule.id)
        await self._event(session, schedule, "schedule.deleted", payload)

    async def trigger(
        self, session: AsyncSession, principal: Principal, schedule_id: str
    ) -> ScheduleFiring:
        """Start a run now (even while disabled); it is recorded in the history as manual."""
        schedule = await self._visible(session, principal, schedule_id, MANAGE, lock=True)
        return await self.firer.fire(
            session,
            schedule,
            trigger="manual",
            scheduled_for=None,
            now=self.firer.clock(),
            principal_id=principal.id,
        )

    async def get(self, session: AsyncSession, principal: Principal, schedule_id: str) -> Schedule:
        return await self._visible(session, principal, schedule_id, READ)

    async def of_definition(
        self, session: AsyncSession, principal: Principal, definition_id: str
    ) -> list[Schedule]:
        definition = await workflow_repository.get_definition(session, definition_id)
        missing = NotFound(f"Workflow definition {definition_id} was not found.")
        if definition is None:
            raise missing
        try:
            await self.access.authorize(session, principal, definition.organization_id, READ)
        except NotFound:
            raise missing from None
        return await repository.of_definition(session, definition_id)

    async def history(
        self,
        session: AsyncSession,
        principal: Principal,
        schedule_id: str,
        *,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[tuple[ScheduleFiring, str | None]], str | None]:
        """Newest first; the cursor is the id of the last entry already seen."""
        schedule = await self._visible(session, principal, schedule_id, READ)
        before: int | None = None
        if cursor:
            before = await repository.firing_sequence(session, schedule.id, cursor)
            if before is None:
                raise InvalidCursor(
                    "The cursor is not an entry of this schedule's history; pass the id of "
                    "the last entry you received.",
                    details={"cursor": cursor[:100]},
                )
        rows = await repository.history_page(
            session, schedule.id, limit=limit + 1, before_sequence=before
        )
        page = rows[:limit]
        return page, (page[-1][0].id if len(rows) > limit and page else None)

    async def _visible(
        self,
        session: AsyncSession,
        principal: Principal,
        schedule_id: str,
        action: str,
        *,
        lock: bool = False,
    ) -> Schedule:
        schedule = await (repository.lock if lock else repository.get)(session, schedule_id)
        missing = NotFound(f"Schedule {schedule_id} was not found.")
        if schedule is None:
            raise missing
        try:
            await self.access.authorize(session, principal, schedule.organization_id, action)
        except NotFound:
            raise missing from None
        return schedule

    async def _event(
        self, session: AsyncSession, schedule: Schedule, kind: str, payload: dict[str, Any]
    ) -> None:
        await self.firer.events.record(
            session, kind, organization_id=schedule.organization_id, payload=payload
        )
        for wake in self._wakers:
            after_commit(session, wake)


def _timing(expression: str, timezone: str) -> tuple[CronSchedule, str]:
    try:
        zone = canonical_timezone(timezone)
    except TimezoneError as exc:
        # Zone names come from the server's time zone database, not from the schema.
        raise _invalid("timezone", str(exc), Unprocessable) from None
    try:
        return CronSchedule.parse(expression, zone), zone
    except CronError as exc:
        raise _invalid(
            "cron_expression", f"invalid cron expression: {exc}", Unprocessable
        ) from None


def _invalid(
    path: str, message: str, error: type[ValidationFailed] = ValidationFailed
) -> ValidationFailed:
    return error(
        f"Invalid request: {path}: {message}",
        details={"errors": [{"path": path, "in": "body", "message": message}]},
    )
