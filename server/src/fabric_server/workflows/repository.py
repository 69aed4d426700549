"""SQL for workflow definitions, runs and node states.

Every change to a run or to one of its nodes happens while holding the run's row lock
(`lock_run`), taken before anything else in the transaction. That serialises the steps of
one run across workers (on SQLite, `BEGIN IMMEDIATE` already serialises writers), and since
a transaction never locks two runs, locks cannot deadlock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Connection, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.db.base import table_of
from fabric_server.events.models import Event
from fabric_server.workflows.models import WorkflowDefinition, WorkflowNodeState, WorkflowRun
from fabric_server.workflows.status import TERMINAL_RUN_STATUSES, RunStatus

_FRESH = {"populate_existing": True}


async def get_definition(session: AsyncSession, definition_id: str) -> WorkflowDefinition | None:
    return await session.get(WorkflowDefinition, definition_id)


async def definition_by_name(
    session: AsyncSession, org_id: str, name: str, *, lock: bool = False
) -> WorkflowDefinition | None:
    query = select(WorkflowDefinition).where(
        WorkflowDefinition.organization_id == org_id, WorkflowDefinition.name == name
    )
    if lock:
        # NO KEY UPDATE: runs being created meanwhile may still reference the row.
        query = query.with_for_update(key_share=True)
    return await session.scalar(query.execution_options(**_FRESH))


async def list_definitions(
    session: AsyncSession, org_ids: Sequence[str]
) -> list[WorkflowDefinition]:
    rows = await session.scalars(
        select(WorkflowDefinition)
        .where(WorkflowDefinition.organization_id.in_(list(org_ids)))
        .order_by(WorkflowDefinition.name, WorkflowDefinition.id)
    )
    return list(rows)


async def get_run(session: AsyncSession, run_id: str) -> WorkflowRun | None:
    return await session.get(WorkflowRun, run_id)


async def lock_run(session: AsyncSession, run_id: str) -> WorkflowRun | None:
    """The run, row-locked until the transaction ends (a no-op lock on SQLite)."""
    query = select(WorkflowRun).where(WorkflowRun.id == run_id).with_for_update()
    return await session.scalar(query.execution_options(**_FRESH))


async def run_by_idempotency_key(
    session: AsyncSession, org_id: str, key: str
) -> WorkflowRun | None:
    return await session.scalar(
        select(WorkflowRun).where(
            WorkflowRun.organization_id == org_id, WorkflowRun.idempotency_key == key
        )
    )


async def page_runs(
    session: AsyncSession,
    org_ids: Sequence[str],
    *,
    limit: int,
    after_id: str | None,
    status: RunStatus | None = None,
    definition_id: str | None = None,
) -> list[WorkflowRun]:
    """Newest first, keyset-paginated on the time-ordered id."""
    query = select(WorkflowRun).where(WorkflowRun.organization_id.in_(list(org_ids)))
    if status is not None:
        query = query.where(WorkflowRun.status == status)
    if definition_id is not None:
        query = query.where(WorkflowRun.workflow_definition_id == definition_id)
    if after_id is not None:
        query = query.where(WorkflowRun.id < after_id)
    rows = await session.scalars(query.order_by(WorkflowRun.id.desc()).limit(limit))
    return list(rows)


async def children_of(session: AsyncSession, run_id: str) -> list[WorkflowRun]:
    """Child runs in the order they were started: node by node, then by item index."""
    rows = list(
        await session.scalars(
            select(WorkflowRun)
            .where(WorkflowRun.parent_run_id == run_id)
            .execution_options(**_FRESH)
        )
    )
    first_seen: dict[str | None, tuple[object, ...]] = {}
    for row in sorted(rows, key=lambda r: (r.created_at, r.id)):
        first_seen.setdefault(row.parent_node_key, (row.created_at, row.id))
    rows.sort(key=lambda r: (first_seen[r.parent_node_key], r.parent_index or 0))
    return rows


async def unfinished_children(session: AsyncSession, run_id: str) -> list[str]:
    """The ids of the child runs of `run_id` that have not ended."""
    rows = await session.scalars(
        select(WorkflowRun.id).where(
            WorkflowRun.parent_run_id == run_id,
            WorkflowRun.status.not_in(TERMINAL_RUN_STATUSES),
        )
    )
    return list(rows)


async def nodes_of(session: AsyncSession, run_id: str) -> list[WorkflowNodeState]:
    rows = await session.scalars(
        select(WorkflowNodeState)
        .where(WorkflowNodeState.run_id == run_id)
        .order_by(WorkflowNodeState.position)
        .execution_options(**_FRESH)
    )
    return list(rows)


async def nodes_of_runs(
    session: AsyncSession, run_ids: Sequence[str]
) -> dict[str, list[WorkflowNodeState]]:
    grouped: dict[str, list[WorkflowNodeState]] = defaultdict(list)
    if not run_ids:
        return grouped
    rows = await session.scalars(
        select(WorkflowNodeState)
        .where(WorkflowNodeState.run_id.in_(list(run_ids)))
        .order_by(WorkflowNodeState.run_id, WorkflowNodeState.position)
    )
    for node in rows:
        grouped[node.run_id].append(node)
    return grouped


async def node_state_id(session: AsyncSession, run_id: str, node_key: str) -> str | None:
    return await session.scalar(
        select(WorkflowNodeState.id).where(
            WorkflowNodeState.run_id == run_id, WorkflowNodeState.node_key == node_key
        )
    )


async def events_of_run(session: AsyncSession, run_id: str, limit: int) -> list[Event]:
    rows = await session.scalars(
        select(Event).where(Event.run_id == run_id).order_by(Event.seq).limit(limit)
    )
    return list(rows)


async def organization_of_definition(session: AsyncSession, definition_id: str) -> str | None:
    """Resolver for permission checks on `workflow:<id>`."""
    definition = await get_definition(session, definition_id)
    return None if definition is None else definition.organization_id


async def organization_of_run(session: AsyncSession, run_id: str) -> str | None:
    """Resolver for permission checks on `workflow_run:<id>`."""
    run = await get_run(session, run_id)
    return None if run is None else run.organization_id


def count_active_top_runs(conn: Connection, org_id: str) -> int:
    """Top-level runs of the organization that have not ended (`InFlightLimit`)."""
    runs = table_of(WorkflowRun)
    count = conn.scalar(
        select(func.count())
        .select_from(runs)
        .where(
            runs.c.organization_id == org_id,
            runs.c.status.not_in(TERMINAL_RUN_STATUSES),
            runs.c.parent_run_id.is_(None),
        )
    )
    return int(count or 0)
