"""Rows to wire objects (the response models)."""

from __future__ import annotations

from fabric_server.schedules.models import Schedule, ScheduleFiring
from fabric_server.schedules.schemas import FiringOut, ScheduleOut, TriggerOut

SKIPPED = "skipped"


def schedule_out(schedule: Schedule) -> ScheduleOut:
    data = {name: getattr(schedule, name) for name in ScheduleOut.model_fields}
    return ScheduleOut.model_validate(data)


def firing_out(firing: ScheduleFiring, run_status: str | None) -> FiringOut:
    data = {
        "id": firing.id,
        "schedule_id": firing.schedule_id,
        "run_id": firing.run_id,
        "scheduled_for": firing.scheduled_for,
        "fired_at": firing.fired_at,
        "triggered_at": firing.fired_at,
        "trigger": firing.trigger,
        "status": SKIPPED if firing.run_id is None else (run_status or "unknown"),
        "reason": firing.reason,
    }
    return FiringOut.model_validate(data)


def trigger_out(firing: ScheduleFiring) -> TriggerOut:
    data = {
        "run_id": firing.run_id,
        "schedule_id": firing.schedule_id,
        "triggered_at": firing.fired_at,
        "trigger": firing.trigger,
        "held": firing.held,
    }
    return TriggerOut.model_validate(data)
