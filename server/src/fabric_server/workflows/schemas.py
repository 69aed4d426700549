"""Request and response models for workflow definitions and runs (the OpenAPI source)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["pending", "running", "waiting", "paused", "completed", "failed", "cancelled"]
NodeStatus = Literal["pending", "ready", "running", "completed", "failed", "skipped", "waiting"]
MAX_NODES = 500


class DefinitionUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    organization_id: str | None = Field(
        default=None, description="Defaults to the caller's organization (dev: the default org)"
    )
    nodes: list[dict[str, Any]] = Field(
        max_length=MAX_NODES,
        description="Nodes (wire-spec §13.2): key, operation|type|kind, config, inputs, "
        "outputs, depends_on, policy",
    )
    defaults: dict[str, Any] | None = Field(
        default=None, description="Applied under every node: timeout, max_retries, model, tier…"
    )
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


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow_definition_id: str = Field(min_length=1, max_length=64)
    context: dict[str, Any] = Field(default_factory=dict, description="The initial run context")
    metadata: dict[str, Any] | None = None
    environment: str | None = Field(default=None, max_length=100)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    priority: int = Field(default=0, ge=-1000, le=1000, description="Higher runs sooner")


class RunStart(BaseModel):
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
