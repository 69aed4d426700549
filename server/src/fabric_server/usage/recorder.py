"""Writing a usage row inside a group-commit unit. The row itself, one per successful
provider execution whoever ran it (job, direct call, workflow node), is built by the
provider-call use case (`provider_calls/use_case.py`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert

from fabric_server.db.base import table_of
from fabric_server.db.types import new_id, utcnow
from fabric_server.usage.models import UsageRecord

_INSERT = insert(table_of(UsageRecord))
_COLUMNS = tuple(column.name for column in table_of(UsageRecord).columns)


def insert_usage(conn: Connection, record: UsageRecord) -> None:
    """Write a usage row in a group-commit unit (Core), its id and time filled in."""
    values: dict[str, Any] = {name: getattr(record, name) for name in _COLUMNS}
    values["id"] = values["id"] or new_id()
    values["created_at"] = values["created_at"] or utcnow()
    conn.execute(_INSERT, values)
