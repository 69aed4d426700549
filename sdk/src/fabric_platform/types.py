"""Shapes of the API's response payloads.

At runtime every response is a plain ``dict`` (so ``job["id"]`` works); these TypedDicts only
tell type checkers and editors which keys to expect. They are ``total=False`` because a Fabric
deployment may omit fields or add new ones.
"""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, TypedDict

__all__ = [
    "AuthResponse",
    "AuthUser",
    "BulkCancelResult",
    "Event",
    "HealthStatus",
    "Job",
    "JobPage",
    "JobStatus",
    "JobUsage",
    "NodeState",
    "RunLog",
    "RunPage",
    "RunProgress",
    "RunStatus",
    "Schedule",
    "ScheduleDeleted",
    "ScheduleHistoryEntry",
    "ScheduleTrigger",
    "UsageRecord",
    "WorkflowDefinition",
    "WorkflowNode",
    "WorkflowRun",
]

JobStatus = Literal["pending", "started", "completed", "failed"]
RunStatus = Literal["pending", "running", "waiting", "paused", "completed", "failed", "cancelled"]


class HealthStatus(TypedDict, total=False):
    """``GET /v1/health``."""

    status: str
    version: str


class Job(TypedDict, total=False):
    """A job: one execution of a modality (text, image, ...) backed by a workflow run.

    ``id`` and ``job_id`` carry the same value.
    """

    id: str
    job_id: str
    organization_id: str
    modality: str
    tier: Optional[str]
    input: Dict[str, Any]
    params: Optional[Dict[str, Any]]
    status: JobStatus
    output: Any
    error: Optional[str]
    workflow_run_id: Optional[str]
    idempotency_key: Optional[str]
    attempts: int
    created_at: str
    updated_at: str
    started_at: Optional[str]
    completed_at: Optional[str]


class JobPage(TypedDict, total=False):
    """One page of ``GET /v1/jobs``; pass ``next_cursor`` back to get the next page."""

    items: List[Job]
    next_cursor: Optional[str]


class UsageRecord(TypedDict, total=False):
    """One provider execution recorded against a job."""

    id: str
    job_id: str
    run_id: Optional[str]
    provider_id: str
    model: Optional[str]
    modality: str
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float
    created_at: str


class JobUsage(TypedDict, total=False):
    """``GET /v1/jobs/{id}/usage``: totals over every provider execution of the job."""

    job_id: str
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float
    provider_id: Optional[str]
    model: Optional[str]
    records: List[UsageRecord]


class Event(TypedDict, total=False):
    """A domain event, as delivered by the SSE streams (and webhooks)."""

    id: str
    kind: str
    organization_id: Optional[str]
    job_id: Optional[str]
    run_id: Optional[str]
    node_key: Optional[str]
    payload: Dict[str, Any]
    created_at: str


class AuthUser(TypedDict, total=False):
    """The user an `AuthResponse` was issued to."""

    id: str
    email: str
    display_name: Optional[str]
    email_verified: bool


class AuthResponse(TypedDict, total=False):
    """A session: returned by login, signup, magic-link verification and token refresh.

    ``expires_in`` is the access token's lifetime in seconds. The refresh token is single-use.
    """

    access_token: str
    refresh_token: Optional[str]
    token_type: str
    expires_in: int
    user: AuthUser


class WorkflowNode(TypedDict, total=False):
    """One node of a workflow definition (a step of the DAG).

    ``inputs`` and ``outputs`` bind context paths (``"$context.topic"``) either as a mapping
    or as a list of ``{"name", "path"}``; ``depends_on`` lists upstream node keys.
    """

    key: str
    operation: str
    kind: str
    type: str
    runtime: str
    config: Dict[str, Any]
    inputs: Any
    outputs: Any
    depends_on: List[str]


class WorkflowDefinition(TypedDict, total=False):
    """A reusable workflow template, registered with `upsert_workflow`."""

    id: str
    name: str
    description: Optional[str]
    organization_id: str
    nodes: List[WorkflowNode]
    defaults: Optional[Dict[str, Any]]
    version: int
    created_at: str
    updated_at: str


class NodeState(TypedDict, total=False):
    """Where one node of a run stands."""

    node_key: str
    status: str
    attempts: int
    output: Any
    error: Optional[str]
    started_at: Optional[str]
    completed_at: Optional[str]


class RunProgress(TypedDict, total=False):
    total_tasks: int
    completed_tasks: int
    current_task: Optional[str]
    percentage: float


class WorkflowRun(TypedDict, total=False):
    """One execution of a workflow definition, with its own context and node states."""

    id: str
    workflow_definition_id: str
    workflow_name: Optional[str]
    organization_id: str
    status: RunStatus
    context: Dict[str, Any]
    output: Any
    error: Optional[str]
    priority: int
    metadata: Optional[Dict[str, Any]]
    progress: Optional[RunProgress]
    parent_run_id: Optional[str]
    parent_node_key: Optional[str]
    created_by: Optional[str]
    idempotency_key: Optional[str]
    created_at: str
    started_at: Optional[str]
    completed_at: Optional[str]
    nodes: List[NodeState]


class RunPage(TypedDict, total=False):
    """One page of ``GET /v1/workflow-runs``; pass ``next_cursor`` back to get the next page."""

    items: List[WorkflowRun]
    next_cursor: Optional[str]


class RunLog(TypedDict, total=False):
    """``GET /v1/workflow-runs/{id}/log``: the run's events and the state of each node."""

    run_id: str
    events: List[Event]
    nodes: List[NodeState]


class BulkCancelResult(TypedDict, total=False):
    """``bulk_cancel_runs``: the ids cancelled, and the ones skipped with the reason why."""

    cancelled: List[str]
    skipped: List[Dict[str, Any]]


class Schedule(TypedDict, total=False):
    """A cron schedule that starts runs of a workflow definition. Times are UTC ISO-8601."""

    id: str
    workflow_definition_id: str
    organization_id: str
    cron_expression: str
    timezone: str
    enabled: bool
    concurrency_policy: Literal["allow", "skip", "queue"]
    catchup_policy: Literal["skip", "latest"]
    input_context: Dict[str, Any]
    priority: int
    description: Optional[str]
    next_run_at: Optional[str]
    last_run_at: Optional[str]
    last_run_id: Optional[str]
    created_by: Optional[str]
    created_at: str
    updated_at: str


class ScheduleTrigger(TypedDict, total=False):
    """``trigger_schedule``: the run just started by hand."""

    run_id: str
    schedule_id: str
    triggered_at: str
    trigger: Literal["manual"]
    held: bool


class ScheduleHistoryEntry(TypedDict, total=False):
    """One firing of a schedule: a run it started (with the run's current status), or an
    occurrence it skipped (``status`` ``"skipped"``, with the ``reason``)."""

    id: str
    schedule_id: str
    run_id: Optional[str]
    scheduled_for: Optional[str]
    fired_at: str
    triggered_at: str
    trigger: Literal["cron", "manual"]
    status: str
    reason: Optional[str]


class ScheduleDeleted(TypedDict, total=False):
    """``delete_schedule``."""

    id: str
    deleted: bool
