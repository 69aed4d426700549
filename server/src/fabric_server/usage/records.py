"""Usage rows: one per provider call, whether a job or a workflow node made it."""

from __future__ import annotations

from fabric_server.db.models import UsageRecord
from fabric_server.providers.base import ProviderResult


def usage_record(
    result: ProviderResult,
    *,
    modality: str,
    organization_id: str,
    principal_id: str | None,
    latency_ms: int,
    job_id: str | None = None,
    run_id: str | None = None,
    node_key: str | None = None,
) -> UsageRecord:
    return UsageRecord(
        organization_id=organization_id,
        principal_id=principal_id,
        job_id=job_id,
        run_id=run_id,
        node_key=node_key,
        provider_id=result.provider_id,
        model=result.model,
        modality=modality,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cost_usd=result.cost_usd,
        latency_ms=latency_ms,
    )
