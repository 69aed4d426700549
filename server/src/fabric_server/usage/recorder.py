"""One usage row per successful provider execution, whoever ran it (job, direct call,
workflow node). Callers add the row in the transaction that records the outcome."""

from __future__ import annotations

from fabric_server.db.models import UsageRecord
from fabric_server.providers.registry import Execution


def usage_record(
    execution: Execution,
    *,
    organization_id: str,
    principal_id: str | None = None,
    api_key_id: str | None = None,
    job_id: str | None = None,
    run_id: str | None = None,
    node_key: str | None = None,
) -> UsageRecord:
    result = execution.result
    return UsageRecord(
        organization_id=organization_id,
        principal_id=principal_id,
        api_key_id=api_key_id,
        job_id=job_id,
        run_id=run_id,
        node_key=node_key,
        provider_id=result.provider_id,
        model=result.model,
        modality=execution.modality,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cost_usd=result.cost_usd,
        latency_ms=execution.latency_ms,
    )
