"""Request and response models for schedules (the OpenAPI source)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from fabric_server.bodies import RequestBody

ConcurrencyPolicy = Literal["allow", "skip", "queue"]
# `forbid` is the reference model's name for `skip` (wire-spec §10.4); stored as `skip`.
ConcurrencyInput = Literal["allow", "skip", "queue", "forbid"]
CatchupPolicy = Literal["skip", "latest"]
Trigger = Literal["cron", "manual"]

_CRON_HELP = (
    "Five fields (minute hour day-of-month month day-of-week) or an alias such as @daily; "
    "see docs/schedules.md"
)
_CONCURRENCY_HELP = (
    "While the previous run of this schedule is still active: `allow` another, `skip` this "
    "occurrence (`forbid` is accepted for `skip`), or `queue` it to start when that run ends"
)
_CATCHUP_HELP = (
    "Occurrences missed while no scheduler ran: `skip` them, or fire the `latest` one once"
)


def _normalise_policy(value: str | None) -> str | None:
    return "skip" if value == "forbid" else value


class ScheduleCreate(RequestBody):
    model_config = ConfigDict(extra="forbid")

    cron_expression: str = Field(
        min_length=1, max_length=200, description=_CRON_HELP, examples=["0 9 * * 1-5"]
    )
    timezone: str = Field(
        default="UTC", min_length=1, max_length=64, description="IANA time zone name"
    )
    input_context: dict[str, Any] = Field(
        default_factory=dict, description="The context each run starts with"
    )
    enabled: bool = True
    concurrency_policy: ConcurrencyInput = Field(default="allow", description=_CONCURRENCY_HELP)
    catchup_policy: CatchupPolicy = Field(default="skip", description=_CATCHUP_HELP)
    priority: int = Field(default=0, ge=-1000, le=1000, description="Higher runs sooner")
    description: str | None = Field(default=None, max_length=10_000)
    workflow_definition_id: str | None = Field(
        default=None, description="Optional; when given it must match the path"
    )

    _policy = field_validator("concurrency_policy")(_normalise_policy)


class ScheduleUpdate(RequestBody):
    """Only the fields present change (all but `description` may be left out, not nulled)."""

    model_config = ConfigDict(extra="forbid")

    # Not nullable in the schema (`SkipJsonSchema`); the service refuses a null (400).
    cron_expression: Annotated[str, Field(min_length=1, max_length=200)] | SkipJsonSchema[None] = (
        None
    )
    timezone: Annotated[str, Field(min_length=1, max_length=64)] | SkipJsonSchema[None] = None
    input_context: dict[str, Any] | SkipJsonSchema[None] = None
    enabled: bool | SkipJsonSchema[None] = None
    concurrency_policy: ConcurrencyInput | SkipJsonSchema[None] = None
    catchup_policy: CatchupPolicy | SkipJsonSchema[None] = None
    priority: Annotated[int, Field(ge=-1000, le=1000)] | SkipJsonSchema[None] = None
    description: str | None = Field(default=None, max_length=10_000)

    _policy = field_validator("concurrency_policy")(_normalise_policy)


class ScheduleOut(BaseModel):
    id: str
    workflow_definition_id: str
    organization_id: str
    cron_expression: str
    timezone: str
    enabled: bool
    concurrency_policy: ConcurrencyPolicy
    catchup_policy: CatchupPolicy
    input_context: dict[str, Any]
    priority: int
    description: str | None
    next_run_at: dt.datetime | None = Field(description="Next firing (UTC); null while disabled")
    last_run_at: dt.datetime | None = Field(description="When the latest run was started")
    last_run_id: str | None
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ScheduleDeleted(BaseModel):
    id: str
    deleted: bool


class TriggerOut(BaseModel):
    run_id: str
    schedule_id: str
    triggered_at: dt.datetime
    trigger: Trigger
    held: bool = Field(description="The run waits for the previous one (policy `queue`)")


class FiringOut(BaseModel):
    id: str
    schedule_id: str
    run_id: str | None
    scheduled_for: dt.datetime | None = Field(
        description="The cron occurrence (UTC); null for manual triggers"
    )
    fired_at: dt.datetime
    triggered_at: dt.datetime = Field(description="Same as fired_at")
    trigger: Trigger
    status: str = Field(description="The run's current status, or `skipped`")
    reason: str | None
