"""Rows to wire objects (validated by the response schemas, then JSON-ready)."""

from __future__ import annotations

from typing import Any

from fabric_server.schedules.models import Schedule, ScheduleFiring
from fabric_server.schedules.schemas import FiringOut, ScheduleOut, TriggerOut

SKIPPED = "skipped"


def schedule_out(schedule: Schedule) -> dict[str, Any]:
    data = {name: getattr(schedule, name) for name in ScheduleOut.model_fields}
    return ScheduleOut.model_validate(data).model_dump(mode="json")


def firing_out(firing: ScheduleFiring, run_status: str | None) -> dict[str, Any]:
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
    return FiringOut.model_validate(data).model_dump(mode="json")


def trigger_out(firing: ScheduleFiring) -> dict[str, Any]:
    data = {
        "run_id": firing.run_id,
        "schedule_id": firing.schedule_id,
        "triggered_at": firing.fired_at,
        "trigger": firing.trigger,
        "held": firing.held,
    }
    return TriggerOut.model_validate(data).model_dump(mode="json")
