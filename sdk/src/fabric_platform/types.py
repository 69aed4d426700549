"""Shapes of the API's response payloads.

At runtime every response is a plain ``dict`` (so ``job["id"]`` works); these TypedDicts only
tell type checkers and editors which keys to expect. They are ``total=False`` because a Fabric
deployment may omit fields or add new ones.
"""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, TypedDict

__all__ = ["Event", "HealthStatus", "Job", "JobPage", "JobStatus", "JobUsage", "UsageRecord"]

JobStatus = Literal["pending", "started", "completed", "failed"]


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
