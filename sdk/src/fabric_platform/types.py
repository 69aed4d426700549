"""Shapes of the API's response payloads.

At runtime every response is a plain ``dict`` (so ``job["id"]`` works); these TypedDicts only
tell type checkers and editors which keys to expect. They are ``total=False`` because a Fabric
deployment may omit fields or add new ones.
"""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, TypedDict

__all__ = [
    "ApiKey",
    "AuditLog",
    "AuditLogPage",
    "AuthResponse",
    "AuthUser",
    "Budget",
    "BulkCancelResult",
    "CodeWorker",
    "CodeWorkerOperation",
    "CodeWorkerPage",
    "CostEstimate",
    "CreatedApiKey",
    "DeleteResult",
    "DeletedWebhook",
    "DeliveryStatus",
    "Event",
    "FailedAttempt",
    "Gallery",
    "GalleryItem",
    "HealthStatus",
    "Invitation",
    "InvitationStatus",
    "Job",
    "JobPage",
    "JobStatus",
    "JobUsage",
    "Me",
    "Membership",
    "MyOrganization",
    "MyPermission",
    "MyTeam",
    "NodeState",
    "OrgLimitValues",
    "OrgLimits",
    "OrgSecret",
    "OrgUsage",
    "Organization",
    "PermissionCheckResult",
    "PermissionGrant",
    "ProviderCapability",
    "ProviderDelta",
    "ProviderExecution",
    "ProviderInfo",
    "ProviderStreamStart",
    "ProviderUsage",
    "ProviderUsageBreakdown",
    "RunLog",
    "RunPage",
    "RunProgress",
    "RunStatus",
    "Schedule",
    "ScheduleDeleted",
    "ScheduleHistoryEntry",
    "ScheduleTrigger",
    "Spending",
    "SpendingByProvider",
    "SpendingDay",
    "Team",
    "UsageDay",
    "UsageRecord",
    "UsageRecordPage",
    "Webhook",
    "WebhookDelivery",
    "WebhookDeliveryPage",
    "WorkflowDefinition",
    "WorkflowNode",
    "WorkflowRun",
]

JobStatus = Literal["pending", "started", "completed", "failed"]
RunStatus = Literal["pending", "running", "waiting", "paused", "completed", "failed", "cancelled"]
DeliveryStatus = Literal["pending", "succeeded", "failed", "retrying"]


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
    """One provider execution: who ran it (principal, API key), for what (job, run and node),
    on which provider and model, and what it used and cost (``cost_usd`` and
    ``estimated_cost_usd`` carry the same value)."""

    id: str
    organization_id: str
    principal_id: Optional[str]
    api_key_id: Optional[str]
    job_id: Optional[str]
    run_id: Optional[str]
    node_key: Optional[str]
    provider_id: str
    model: Optional[str]
    modality: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    estimated_cost_usd: float
    latency_ms: int
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
    timestamp: str


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


class Organization(TypedDict, total=False):
    """An organization (tenant). ``role`` is the caller's, in `list_organizations`."""

    id: str
    slug: str
    name: str
    archived: bool
    created_at: str
    updated_at: str
    role: str


class Team(TypedDict, total=False):
    id: str
    organization_id: str
    slug: str
    name: str
    archived: bool
    created_at: str


class Membership(TypedDict, total=False):
    """A principal's membership of an organization (``accept_invitation`` adds
    ``invitation_id``)."""

    id: str
    principal_id: str
    organization_id: str
    team_id: Optional[str]
    role: str
    active: bool
    created_at: str
    email: Optional[str]
    display_name: Optional[str]
    invitation_id: str


InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]


class Invitation(TypedDict, total=False):
    id: str
    organization_id: str
    team_id: Optional[str]
    email: str
    role: str
    status: InvitationStatus
    expires_at: str
    created_at: str
    accepted_at: Optional[str]
    revoked_at: Optional[str]


class Me(TypedDict, total=False):
    """``get_me``: who the server takes the caller for (``kind``: user, api_key or dev;
    ``platform_admin``: whether it may curate public galleries)."""

    principal_id: str
    authenticated: bool
    kind: str
    email: Optional[str]
    display_name: Optional[str]
    email_verified: Optional[bool]
    organization_id: Optional[str]
    api_key_id: Optional[str]
    platform_admin: bool


class MyOrganization(TypedDict, total=False):
    id: str
    slug: str
    name: str
    archived: bool
    role: str


class MyTeam(TypedDict, total=False):
    id: str
    organization_id: str
    slug: str
    name: str
    archived: bool
    created_at: str
    role: str


class MyPermission(TypedDict, total=False):
    """The caller's role and allowed actions in one organization (or one of its teams)."""

    organization_id: str
    team_id: Optional[str]
    role: str
    actions: List[str]


class PermissionCheckResult(TypedDict, total=False):
    """One answer of `check_permissions`; ``reason`` says why (role, grant, or a refusal)."""

    action: str
    resource_type: Optional[str]
    resource_id: Optional[str]
    organization_id: Optional[str]
    allowed: bool
    reason: str
    role: Optional[str]


class PermissionGrant(TypedDict, total=False):
    """An explicit ``allow`` or ``deny`` of one action to a principal in an organization,
    optionally narrowed to a team or to one resource."""

    id: str
    principal_id: str
    organization_id: str
    team_id: Optional[str]
    effect: Literal["allow", "deny"]
    action: str
    resource_type: Optional[str]
    resource_id: Optional[str]
    created_by: Optional[str]
    created_at: str


class ApiKey(TypedDict, total=False):
    """An API key as listed: never with its secret."""

    id: str
    prefix: str
    name: str
    description: Optional[str]
    organization_id: str
    scopes: List[str]
    disabled: bool
    expires_at: Optional[str]
    created_by: str
    created_at: str
    rotated_at: Optional[str]
    last_used_at: Optional[str]


class CreatedApiKey(ApiKey, total=False):
    """`create_api_key` / `rotate_api_key`: ``key`` is the secret, shown this once."""

    key: str


class OrgSecret(TypedDict, total=False):
    """A secret's metadata; its value is never returned."""

    name: str


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


class ProviderCapability(TypedDict, total=False):
    """One model of a provider for one modality, with its price."""

    modality: str
    model: str
    supports_streaming: bool
    estimated_cost_per_request: float
    input_cost_per_million_tokens: float
    output_cost_per_million_tokens: float
    cost_per_request: float
    price_unit: str
    default: bool


class ProviderInfo(TypedDict, total=False):
    """``GET /v1/providers``: a provider and whether the organization can use it.

    ``id`` and ``provider_id`` carry the same value; when ``available`` is false, ``reason``
    says what to configure (e.g. "set the OPENAI_API_KEY secret").
    """

    id: str
    provider_id: str
    name: str
    tier: str
    healthy: bool
    health_detail: Optional[str]
    available: bool
    reason: Optional[str]
    modalities: List[str]
    supports_streaming: bool
    models: List[str]
    default_models: Dict[str, str]
    capabilities: List[ProviderCapability]


class ProviderUsage(TypedDict, total=False):
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float


class FailedAttempt(TypedDict, total=False):
    """A provider routing tried before falling back to the one that answered."""

    provider_id: Optional[str]
    code: str
    message: str


class ProviderExecution(TypedDict, total=False):
    """``execute_provider``: the output of the provider routing chose, and what it used."""

    provider_id: str
    model: str
    modality: str
    tier: str
    output: Dict[str, Any]
    usage: ProviderUsage
    latency_ms: int
    failed_attempts: List[FailedAttempt]


class ProviderStreamStart(TypedDict, total=False):
    """The ``started`` frame of a streamed execution: who is answering."""

    provider_id: str
    model: str
    tier: str


class ProviderDelta(TypedDict, total=False):
    """The next piece of a streamed text answer (``index`` counts from 0)."""

    index: int
    text: str


class CostEstimate(TypedDict, total=False):
    """``estimate_cost``: the likely provider, tokens and price of a request."""

    provider_id: str
    model: str
    modality: str
    tier: str
    input_tokens_estimate: int
    output_tokens_estimate: int
    estimated_cost_usd: float
    currency: str
    available: bool


class ProviderUsageBreakdown(TypedDict, total=False):
    provider_id: str
    model: str
    executions: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class OrgUsage(TypedDict, total=False):
    """``get_org_usage``: totals of a period (by default the current month, UTC)."""

    organization_id: str
    period_start: str
    period_end: str
    total_runs: int
    total_jobs: int
    total_executions: int
    input_tokens: int
    output_tokens: int
    total_cost_usd: float
    currency: str
    by_provider: List[ProviderUsageBreakdown]


class UsageRecordPage(TypedDict, total=False):
    """One page of ``get_org_usage_records``; pass ``next_cursor`` back for the next page."""

    items: List[UsageRecord]
    next_cursor: Optional[str]


class AuditLog(TypedDict, total=False):
    """One audited change: who (``actor_type`` ``"user"``, ``"api_key"`` or ``"dev"``, with
    ``actor_id`` and the ``api_key_id`` used), what (``action`` such as ``"job.create"``, on
    ``resource_type``/``resource_id``), where and when."""

    id: str
    organization_id: Optional[str]
    actor_type: str
    actor_id: Optional[str]
    api_key_id: Optional[str]
    action: str
    resource_type: Optional[str]
    resource_id: Optional[str]
    method: str
    path: str
    ip: Optional[str]
    user_agent: Optional[str]
    request_id: Optional[str]
    created_at: str


class AuditLogPage(TypedDict, total=False):
    """One page of audit logs, newest first; pass ``next_cursor`` back for the next page."""

    items: List[AuditLog]
    next_cursor: Optional[str]


class UsageDay(TypedDict, total=False):
    """One UTC day of ``get_org_usage_daily`` (``date`` is ``YYYY-MM-DD``)."""

    date: str
    executions: int
    jobs: int
    runs: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class Budget(TypedDict, total=False):
    """``get_budget`` / ``set_budget``: the monthly spending limit and this month's spend.

    ``monthly_limit_usd`` is None without a limit (then ``remaining_usd`` is None too);
    ``exceeded`` means paid provider calls are refused until ``period_end``.
    """

    organization_id: str
    monthly_limit_usd: Optional[float]
    alert_thresholds: List[float]
    thresholds_reached: List[float]
    period_start: str
    period_end: str
    spent_usd: float
    remaining_usd: Optional[float]
    exceeded: bool
    currency: str
    updated_at: Optional[str]


class SpendingDay(TypedDict, total=False):
    date: str
    executions: int
    cost_usd: float


class SpendingByProvider(TypedDict, total=False):
    provider_id: str
    executions: int
    cost_usd: float


class Spending(TypedDict, total=False):
    """``get_org_spending``: this month's spend so far, by UTC day (every day up to today)
    and by provider."""

    organization_id: str
    period_start: str
    period_end: str
    currency: str
    spent_usd: float
    monthly_limit_usd: Optional[float]
    remaining_usd: Optional[float]
    by_day: List[SpendingDay]
    by_provider: List[SpendingByProvider]


class Gallery(TypedDict, total=False):
    """A curated collection of reference assets; ``public`` ones have no organization."""

    id: str
    organization_id: Optional[str]
    kind: str
    name: str
    description: Optional[str]
    metadata: Optional[Dict[str, Any]]
    public: bool
    item_count: int
    created_at: str
    updated_at: str


class GalleryItem(TypedDict, total=False):
    """One asset of a gallery: a ``url`` or an ``asset_id``, with its ``tags``."""

    id: str
    gallery_id: str
    url: Optional[str]
    asset_id: Optional[str]
    title: Optional[str]
    tags: List[str]
    metadata: Optional[Dict[str, Any]]
    created_at: str


class DeleteResult(TypedDict, total=False):
    id: str
    deleted: bool


class Webhook(TypedDict, total=False):
    """A webhook endpoint. ``secret`` is present only in the answer to its creation."""

    id: str
    organization_id: str
    url: str
    description: Optional[str]
    event_filter: List[str]
    events: List[str]
    resource_filter: Optional[Dict[str, str]]
    active: bool
    max_retries: int
    created_at: str
    updated_at: str
    disabled_reason: Optional[str]
    secret: str


class DeletedWebhook(TypedDict, total=False):
    """``delete_webhook``."""

    id: str
    deleted: bool


class WebhookDelivery(TypedDict, total=False):
    """One delivery attempt; ``delivery_id`` is the ``X-Fabric-Delivery`` header's value."""

    id: str
    delivery_id: str
    webhook_id: str
    event_id: str
    event_kind: str
    attempt: int
    status: DeliveryStatus
    status_code: Optional[int]
    latency_ms: Optional[int]
    response_body: Optional[str]
    error: Optional[str]
    error_message: Optional[str]
    next_retry_at: Optional[str]
    created_at: str
    completed_at: Optional[str]


class WebhookDeliveryPage(TypedDict, total=False):
    """``list_webhook_deliveries``: newest first; pass ``next_cursor`` back for more."""

    items: List[WebhookDelivery]
    next_cursor: Optional[str]


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


class CodeWorkerOperation(TypedDict, total=False):
    """An operation a code worker serves, with how many tasks of it it runs at once."""

    name: str
    concurrency: int


class CodeWorker(TypedDict, total=False):
    """A code worker process: ``status`` is ``online``, ``stale`` or ``offline``."""

    id: str
    organization_id: str
    name: str
    operations: List[CodeWorkerOperation]
    sdk_version: Optional[str]
    host: Optional[str]
    status: str
    tasks_in_flight: int
    registered_at: str
    last_seen_at: str
    stopped_at: Optional[str]
    heartbeat_interval_seconds: float
    lease_seconds: float


class CodeWorkerPage(TypedDict, total=False):
    """One page of ``GET /v1/workers``; pass ``next_cursor`` back to get the next page."""

    items: List[CodeWorker]
    next_cursor: Optional[str]


class OrgLimitValues(TypedDict, total=False):
    max_active_jobs: Optional[int]
    max_active_runs: Optional[int]


class OrgLimits(TypedDict, total=False):
    """``get_org_limits``: limits in effect (0: none), the organization's own, the server's."""

    organization_id: str
    max_active_jobs: int
    max_active_runs: int
    overrides: OrgLimitValues
    defaults: OrgLimitValues
    updated_at: Optional[str]
    updated_by: Optional[str]
