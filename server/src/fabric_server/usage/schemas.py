"""Response models for organization usage (the OpenAPI comes from these)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel


class ProviderUsageOut(BaseModel):
    provider_id: str
    model: str
    executions: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class OrgUsageOut(BaseModel):
    organization_id: str
    period_start: dt.datetime
    period_end: dt.datetime
    total_runs: int
    total_jobs: int
    total_executions: int
    input_tokens: int
    output_tokens: int
    total_cost_usd: float
    currency: Literal["USD"]
    by_provider: list[ProviderUsageOut]


class OrgUsageRecordOut(BaseModel):
    id: str
    organization_id: str
    principal_id: str | None
    api_key_id: str | None
    job_id: str | None
    run_id: str | None
    node_key: str | None
    provider_id: str
    model: str
    modality: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    estimated_cost_usd: float
    latency_ms: int
    created_at: dt.datetime


class UsageRecordPage(BaseModel):
    items: list[OrgUsageRecordOut]
    next_cursor: str | None


class UsageDayOut(BaseModel):
    date: dt.date
    executions: int
    jobs: int
    runs: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
