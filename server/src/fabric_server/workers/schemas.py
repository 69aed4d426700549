"""Request bodies and answers of the code-worker routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from fabric_server.bodies import JsonInt, RequestBody
from fabric_server.workflows.nodes.worker import MAX_OPERATION_LENGTH, OPERATION_PATTERN

OperationName = Annotated[
    str, StringConstraints(pattern=OPERATION_PATTERN, max_length=MAX_OPERATION_LENGTH)
]
MAX_OPERATIONS = 100
MAX_POLL_WAIT_SECONDS = 30.0
MAX_TASKS_PER_POLL = 100


# Operation names refuse the built-ins' namespaces with a look-ahead (Python's engine).
_NAMED = ConfigDict(extra="forbid", regex_engine="python-re")


class OperationIn(RequestBody):
    model_config = _NAMED

    name: OperationName
    concurrency: int = Field(default=1, ge=1, le=10_000)


class WorkerRegister(RequestBody):
    """`POST /v1/workers`: what the worker serves, and who it is."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    operations: list[OperationIn] = Field(min_length=1, max_length=MAX_OPERATIONS)
    sdk_version: str | None = Field(default=None, max_length=64)
    host: str | None = Field(default=None, max_length=255)
    organization_id: str | None = Field(default=None, max_length=64)


class OperationOut(BaseModel):
    name: str
    concurrency: int


class WorkerOut(BaseModel):
    id: str
    organization_id: str
    name: str
    operations: list[OperationOut]
    sdk_version: str | None
    host: str | None
    status: Literal["online", "stale", "offline"]
    tasks_in_flight: int
    registered_at: str
    last_seen_at: str
    stopped_at: str | None
    heartbeat_interval_seconds: float
    lease_seconds: float


class WorkerPage(BaseModel):
    items: list[WorkerOut]
    next_cursor: str | None


class PollIn(RequestBody):
    """Free slots per operation, and how long to wait for the first task."""

    model_config = _NAMED

    capacity: Annotated[
        dict[OperationName, Annotated[JsonInt, Field(ge=0, le=MAX_TASKS_PER_POLL)]],
        WithJsonSchema(
            {
                "type": "object",
                "maxProperties": MAX_OPERATIONS,
                "propertyNames": {"pattern": OPERATION_PATTERN, "maxLength": MAX_OPERATION_LENGTH},
                "additionalProperties": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_TASKS_PER_POLL,
                },
                "description": "Free slots per operation the worker registered",
            }
        ),
    ] = Field(max_length=MAX_OPERATIONS)
    wait_seconds: float = Field(default=20.0, ge=0, le=MAX_POLL_WAIT_SECONDS)


class TaskOut(BaseModel):
    id: str
    attempt: int = Field(description="Send it back with every call about the task")
    operation: str
    run_id: str
    node_key: str
    node_attempt: int
    inputs: dict[str, Any]
    config: dict[str, Any]
    secrets: dict[str, str]
    timeout_seconds: float | None
    lease_expires_at: str
    idempotency_key: str


class HeldTaskIn(RequestBody):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=64)
    attempt: int = Field(ge=1)


class HeartbeatIn(RequestBody):
    model_config = ConfigDict(extra="forbid")

    tasks: list[HeldTaskIn] = Field(default_factory=list, max_length=10_000)


class HeartbeatOut(BaseModel):
    cancel: list[str] = Field(description="Tasks to stop: report nothing more for them")
    lease_expires_at: str


class CompleteIn(RequestBody):
    model_config = ConfigDict(extra="forbid")

    attempt: int = Field(ge=1)
    output: dict[str, Any]


class FailIn(RequestBody):
    model_config = ConfigDict(extra="forbid")

    attempt: int = Field(ge=1)
    error: str = Field(min_length=1, max_length=10_000)
    retryable: bool = True
    details: dict[str, Any] | None = None


class ProgressIn(RequestBody):
    model_config = ConfigDict(extra="forbid")

    attempt: int = Field(ge=1)
    progress: float | None = Field(default=None, ge=0, le=1)
    message: str | None = Field(default=None, max_length=2000)


class LogIn(RequestBody):
    model_config = ConfigDict(extra="forbid")

    attempt: int = Field(ge=1)
    message: str = Field(min_length=1, max_length=10_000)
    level: Literal["debug", "info", "warning", "error"] = "info"


class TaskReported(BaseModel):
    task_id: str
    status: Literal["completed", "failed"]


class Accepted(BaseModel):
    task_id: str
    accepted: bool
