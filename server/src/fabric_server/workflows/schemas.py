"""Request and response models for workflow definitions and runs (the OpenAPI source)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from fabric_server.bodies import RequestBody

RunStatus = Literal["pending", "running", "waiting", "paused", "completed", "failed", "cancelled"]
NodeStatus = Literal["pending", "ready", "running", "completed", "failed", "skipped", "waiting"]
MAX_NODES = 500


_NULLABLE_TIMEOUT_MS = {
    "anyOf": [{"type": "null"}, {"type": "number", "exclusiveMinimum": 0, "maximum": 86_400_000}]
}
_NULLABLE_TIMEOUT = {
    "anyOf": [{"type": "null"}, {"type": "number", "exclusiveMinimum": 0, "maximum": 86_400}]
}
_NULLABLE_RETRIES = {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 0, "maximum": 20}]}
_BINDING_PATH = {
    "type": "string",
    "pattern": r"^\$context\.[A-Za-z0-9_-]{1,100}(?:\.[A-Za-z0-9_-]{1,100})*$",
}
_BINDINGS = {
    "description": 'A map {name: "$context.path"} or a list [{name, path}]',
    "anyOf": [
        {"type": "null"},
        {"type": "object", "additionalProperties": _BINDING_PATH},
        {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "path"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "path": _BINDING_PATH,
                },
            },
        },
    ],
}
# The shape of a node (wire-spec §13.2). What no schema states is checked after it, and
# answered 422: unique keys, known dependencies, no cycles, operations this server knows,
# binding paths and each operation's own config.
NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "key": {
            "type": ["string", "null"],
            "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$",
            "description": "Unique in the workflow; derived from the operation when absent",
        },
        **{
            name: {"type": ["string", "null"], "description": "The operation (one spelling)"}
            for name in ("operation", "type", "kind")
        },
        "config": {"type": ["object", "null"], "properties": {"timeout": _NULLABLE_TIMEOUT}},
        "inputs": _BINDINGS,
        "outputs": _BINDINGS,
        "depends_on": {
            "anyOf": [
                {"type": "null"},
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}},
            ]
        },
        "policy": {
            "type": ["object", "null"],
            "properties": {"timeout_ms": _NULLABLE_TIMEOUT_MS, "max_retries": _NULLABLE_RETRIES},
        },
        "runtime": {},
        "name": {},
        "description": {},
    },
    "anyOf": [
        *(
            {"required": [name], "properties": {name: {"type": "string"}}}
            for name in ("operation", "type", "kind")
        ),
        {
            "required": ["config"],
            "properties": {
                "config": {
                    "type": "object",
                    "required": ["operation"],
                    "properties": {"operation": {"type": "string"}},
                }
            },
        },
    ],
}
DEFAULTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Applied under every node: timeout, max_retries, model, tier…",
    "properties": {
        "timeout": _NULLABLE_TIMEOUT,
        "timeout_ms": _NULLABLE_TIMEOUT_MS,
        "max_retries": _NULLABLE_RETRIES,
    },
}


class DefinitionUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    organization_id: str | None = Field(
        default=None, description="Defaults to the caller's organization (dev: the default org)"
    )
    # The node and defaults schemas are published here and checked by the definition service,
    # whose messages name the node and the problem.
    nodes: list[Annotated[dict[str, Any], WithJsonSchema(NODE_SCHEMA)]] = Field(
        max_length=MAX_NODES,
        json_schema_extra={"minItems": 1},
        description="Nodes (wire-spec §13.2): key, operation|type|kind, config, inputs, "
        "outputs, depends_on, policy",
    )
    defaults: Annotated[dict[str, Any], WithJsonSchema(DEFAULTS_SCHEMA)] | None = None
    description: str | None = Field(default=None, max_length=10_000)


class Binding(BaseModel):
    name: str
    path: str


class NodeOut(BaseModel):
    key: str
    operation: str
    config: dict[str, Any]
    inputs: list[Binding]
    outputs: list[Binding]
    depends_on: list[str]
    policy: dict[str, Any]
    runtime: str | None = None
    name: str | None = None
    description: str | None = None


class DefinitionOut(BaseModel):
    id: str
    name: str
    organization_id: str
    version: int
    description: str | None
    nodes: list[NodeOut]
    defaults: dict[str, Any]
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class RunCreate(RequestBody):
    model_config = ConfigDict(extra="forbid")

    workflow_definition_id: str = Field(min_length=1, max_length=64)
    context: dict[str, Any] = Field(default_factory=dict, description="The initial run context")
    metadata: dict[str, Any] | None = None
    environment: str | None = Field(default=None, max_length=100)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    priority: int = Field(default=0, ge=-1000, le=1000, description="Higher runs sooner")


class RunStart(RequestBody):
    model_config = ConfigDict(extra="forbid")

    priority: int | None = Field(default=None, ge=-1000, le=1000)


class RunCancel(BaseModel):
    reason: str | None = Field(default=None, max_length=1000)


class RunPause(BaseModel):
    reason: str | None = Field(
        default=None, max_length=1000, description="Recorded in `workflow.run.paused`"
    )


class BulkCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_ids: list[str] = Field(min_length=1, max_length=500)


class SkippedRun(BaseModel):
    id: str
    reason: str


class BulkCancelResult(BaseModel):
    cancelled: list[str]
    skipped: list[SkippedRun]


class Progress(BaseModel):
    total_tasks: int
    completed_tasks: int
    current_task: str | None
    percentage: float


class NodeStateOut(BaseModel):
    node_key: str
    operation: str
    status: NodeStatus
    attempts: int
    depends_on: list[str]
    input: dict[str, Any] | None
    output: dict[str, Any] | None
    error: str | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None


class RunOut(BaseModel):
    id: str
    workflow_definition_id: str
    workflow_name: str
    definition_version: int
    organization_id: str
    status: RunStatus
    context: dict[str, Any]
    output: dict[str, Any] | None
    error: str | None
    priority: int
    metadata: dict[str, Any] | None
    environment: str | None
    progress: Progress
    parent_run_id: str | None
    parent_node_key: str | None
    created_by: str | None
    idempotency_key: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    nodes: list[NodeStateOut]


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None


class EventOut(BaseModel):
    id: str
    kind: str
    organization_id: str | None
    job_id: str | None
    run_id: str | None
    node_key: str | None
    payload: dict[str, Any]
    created_at: dt.datetime
    timestamp: dt.datetime


class RunLog(BaseModel):
    run_id: str
    status: RunStatus
    nodes: list[NodeStateOut]
    events: list[EventOut]
