"""SQL for budgets: read, create once, and lock the organization's budget row; the running
spend of a month."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Executable, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.budgets.models import OrganizationBudget, OrganizationSpend


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


async def spent(session: AsyncSession, org_id: str, period_start: dt.datetime) -> float:
    """What the organization's usage cost in the month starting `period_start`."""
    value = await session.scalar(
        select(OrganizationSpend.spent_usd).where(
            OrganizationSpend.organization_id == org_id,
            OrganizationSpend.period_start == period_start,
        )
    )
    return float(value or 0.0)


def add_spend(dialect: str, org_id: str, period_start: dt.datetime, amount: float) -> Executable:
    """The statement adding `amount` to the month's running spend (creating its row)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(OrganizationSpend).values(
        organization_id=org_id, period_start=period_start, spent_usd=amount
    )
    return statement.on_conflict_do_update(
        index_elements=["organization_id", "period_start"],
        set_={"spent_usd": OrganizationSpend.spent_usd + statement.excluded.spent_usd},
    )
