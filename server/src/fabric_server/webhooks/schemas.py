"""Request and response models for webhooks (the OpenAPI document comes from these)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from fabric_server.bodies import RequestBody

EventPattern = Annotated[
    str,
    StringConstraints(
        pattern=r"^(\*|[a-z0-9_-]+(\.[a-z0-9_-]+)*(\.\*)?)$", min_length=1, max_length=100
    ),
]
ResourceKey = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*$", max_length=64)]
ResourceValue = Annotated[str, StringConstraints(max_length=200)]
# Pydantic would publish the key rule as `patternProperties`, which lets other keys through.
ResourceFilter = Annotated[
    dict[ResourceKey, ResourceValue],
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": 20,
            "propertyNames": {"pattern": r"^[a-z_][a-z0-9_]*$", "maxLength": 64},
            "additionalProperties": {"type": "string", "maxLength": 200},
        }
    ),
]
# Characters that never appear in a URL the server stores: controls, spaces (as Python and
# JSON Schema regular expressions both read them).
_SPACES = r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_NO_SPACE = rf"[^{_SPACES}]"
_HOST = rf"(?:[^{_SPACES}/?#@:\[\]\\]+|\[[0-9A-Fa-f:.]+\])"
_PORT_NUMBER = (
    r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
)
_PORT = rf"(?::{_PORT_NUMBER}?)?"
# An absolute http(s) URL without credentials. Which addresses it may point at is server
# policy (private ranges, allowed networks): a URL refused by it is a 422.
URL_PATTERN = rf"^[Hh][Tt][Tt][Pp][Ss]?://{_HOST}{_PORT}(?:[/?#]{_NO_SPACE}*)?$"
WebhookUrl = Annotated[
    str,
    StringConstraints(pattern=URL_PATTERN, max_length=2048),
    Field(description="http(s) URL receiving the POSTs"),
]
DeliveryStatus = Literal["pending", "succeeded", "failed", "retrying"]

_EVENTS = (
    "Event kinds to receive: exact kinds (`job.completed`) or prefix wildcards "
    "(`workflow.run.*`, `*`). Empty or absent: every event."
)
_RESOURCE = (
    "Only events whose field equals the value: `job_id`, `run_id`, `node_key`, "
    "`organization_id`, else a top-level payload field (e.g. `workflow_id`)."
)


class _WebhookFields(RequestBody):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl
    events: list[EventPattern] | None = Field(default=None, max_length=100, description=_EVENTS)
    event_filter: list[EventPattern] | None = Field(
        default=None, max_length=100, description="Same as `events` (the docs' field name)"
    )
    secret: str | None = Field(
        default=None,
        min_length=8,
        max_length=256,
        description="Signing secret; generated (`whsec_…`) when absent. Returned once.",
    )
    description: str | None = Field(default=None, max_length=500)
    resource_filter: ResourceFilter | None = Field(
        default=None, max_length=20, description=_RESOURCE
    )
    max_retries: int = Field(default=5, ge=0, le=20, description="Retries after the first try")
    active: bool = True


class WebhookCreate(_WebhookFields):
    """`POST /v1/webhooks` (reference client A)."""

    organization_id: str = Field(max_length=64)


class OrgWebhookCreate(_WebhookFields):
    """`POST /v1/organizations/{org}/webhooks` (reference client B and the docs)."""


class WebhookUpdate(RequestBody):
    """Any subset of the fields; `active: true` re-enables a disabled endpoint."""

    model_config = ConfigDict(extra="forbid")

    # url, active, max_retries and secret may be left out but not set to null: the schema
    # says so (`SkipJsonSchema`), and the service refuses a null (400).
    url: WebhookUrl | SkipJsonSchema[None] = None
    events: list[EventPattern] | None = Field(default=None, max_length=100, description=_EVENTS)
    event_filter: list[EventPattern] | None = Field(default=None, max_length=100)
    active: bool | SkipJsonSchema[None] = None
    description: str | None = Field(default=None, max_length=500)
    max_retries: Annotated[int, Field(ge=0, le=20)] | SkipJsonSchema[None] = None
    resource_filter: ResourceFilter | None = Field(
        default=None, max_length=20, description=_RESOURCE
    )
    secret: Annotated[str, Field(min_length=8, max_length=256)] | SkipJsonSchema[None] = None


class WebhookOut(BaseModel):
    id: str
    organization_id: str
    url: str
    description: str | None
    event_filter: list[str]
    events: list[str] = Field(description="The same list as `event_filter`")
    resource_filter: dict[str, str] | None
    active: bool
    max_retries: int
    created_at: dt.datetime
    updated_at: dt.datetime
    disabled_reason: str | None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret: shown this once, never again")


class WebhookDeleted(BaseModel):
    id: str
    deleted: bool


class DeliveryAttemptOut(BaseModel):
    id: str = Field(description="This attempt")
    delivery_id: str = Field(description="The delivery (`X-Fabric-Delivery`), same every retry")
    webhook_id: str
    event_id: str
    event_kind: str
    attempt: int = Field(description="1 for the first try, 2 for the first retry, …")
    status: DeliveryStatus
    status_code: int | None
    latency_ms: int | None
    response_body: str | None = Field(description="The receiver's answer, first 1 KiB")
    error: str | None
    error_message: str | None = Field(description="The same as `error`")
    next_retry_at: dt.datetime | None
    created_at: dt.datetime
    completed_at: dt.datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryAttemptOut]
    next_cursor: str | None
