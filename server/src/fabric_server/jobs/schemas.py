"""Request and response models for jobs (the OpenAPI document comes from these)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fabric_server.bodies import RequestBody
from fabric_server.providers.schemas import ProviderInput

Modality = Literal["text", "image", "audio", "video", "embedding"]
JobStatus = Literal["pending", "started", "completed", "failed"]


class JobCreate(RequestBody):
    model_config = ConfigDict(extra="forbid")

    modality: Modality
    input: ProviderInput
    organization_id: str | None = Field(
        default=None, description="Defaults to the caller's organization (dev: the default org)"
    )
    params: dict[str, Any] | None = None
    tier: Literal["basic", "premium"] | None = None
    model: str | None = Field(default=None, max_length=200)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    priority: int = Field(default=0, ge=-1000, le=1000)


MAX_BATCH = 1000


class JobBatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: list[JobCreate] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="Up to 1,000 jobs, created together or not at all",
    )
    organization_id: str | None = Field(
        default=None, description="The organization of the jobs that name none"
    )


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    job_id: str
    organization_id: str
    modality: str
    tier: str | None
    model: str | None
    input: dict[str, Any]
    params: dict[str, Any] | None
    status: JobStatus
    output: dict[str, Any] | None
    error: str | None
    workflow_run_id: str | None
    idempotency_key: str | None
    attempts: int
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None


class JobBatchOut(BaseModel):
    items: list[JobOut] = Field(description="The jobs, in the order they were given")
    created: int = Field(description="How many were new (the rest replayed an idempotency key)")


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class UsageRecordOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    organization_id: str
    job_id: str | None
    run_id: str | None
    node_key: str | None
    provider_id: str
    model: str
    modality: str
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float
    latency_ms: int
    created_at: dt.datetime


class JobUsage(BaseModel):
    job_id: str
    provider_id: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float
    records: list[UsageRecordOut]
