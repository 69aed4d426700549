"""One usage row per successful provider execution, whoever ran it (job, direct call,
workflow node). Callers add the row in the transaction that records the outcome."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert

from fabric_server.db.base import table_of
from fabric_server.db.types import new_id, utcnow
from fabric_server.providers.registry import Execution
from fabric_server.usage.models import UsageRecord


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


_INSERT = insert(table_of(UsageRecord))
_COLUMNS = tuple(column.name for column in table_of(UsageRecord).columns)


def insert_usage(conn: Connection, record: UsageRecord) -> None:
    """Write a usage row in a group-commit unit (Core), its id and time filled in."""
    values: dict[str, Any] = {name: getattr(record, name) for name in _COLUMNS}
    values["id"] = values["id"] or new_id()
    values["created_at"] = values["created_at"] or utcnow()
    conn.execute(_INSERT, values)
