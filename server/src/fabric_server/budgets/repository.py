"""SQL for budgets: read, create once, and lock the organization's budget row."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.budgets.models import OrganizationBudget


async def get(session: AsyncSession, org_id: str) -> OrganizationBudget | None:
    return await session.get(OrganizationBudget, org_id)


async def lock(session: AsyncSession, org_id: str) -> OrganizationBudget | None:
    """The budget row, locked until the transaction ends and read afresh (PostgreSQL;
    SQLite's write transactions are serialised already)."""
    return await session.scalar(
        select(OrganizationBudget)
        .where(OrganizationBudget.organization_id == org_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def create_if_missing(session: AsyncSession, org_id: str) -> None:
    """Insert an empty (no limit) budget row unless one exists; concurrent callers both
    succeed and then meet on the row lock."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(OrganizationBudget)
        .values(organization_id=org_id)
        .on_conflict_do_nothing(index_elements=["organization_id"])
    )
