"""cache versions, running spend, jobs by status, run trees: counters that make per-process
caches exact, each organization's spend per month kept as usage is recorded, an index that
lists an organization's jobs of one status without walking the others, and each run's root

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 21:00:00.000000
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

import fabric_server.db.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COUNTERS = ("access", "sessions", "secrets", "budgets", "webhooks")


def upgrade() -> None:
    versions = op.create_table(
        "cache_versions",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cache_versions")),
    )
    op.bulk_insert(versions, [{"name": name, "version": 0} for name in COUNTERS])
    spend = op.create_table(
        "organization_spend",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column(
            "period_start", fabric_server.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("spent_usd", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "organization_id", "period_start", name=op.f("pk_organization_spend")
        ),
    )
    # The spend so far, month by month, from the usage recorded before this revision.
    usage = sa.table(
        "usage_records",
        sa.column("organization_id", sa.String()),
        sa.column("cost_usd", sa.Float()),
        sa.column("created_at", fabric_server.db.types.UTCDateTime(timezone=True)),
    )
    totals: dict[tuple[str, dt.datetime], float] = defaultdict(float)
    rows = op.get_bind().execute(
        sa.select(usage.c.organization_id, usage.c.cost_usd, usage.c.created_at).where(
            usage.c.cost_usd > 0
        )
    )
    for org_id, cost, created in rows:
        month = dt.datetime(created.year, created.month, 1, tzinfo=dt.UTC)
        totals[(org_id, month)] += float(cost)
    if totals:
        op.bulk_insert(
            spend,
            [
                {"organization_id": org, "period_start": month, "spent_usd": total}
                for (org, month), total in totals.items()
            ],
        )

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_org_status_id", ["organization_id", "status", "id"])
    # Counting a run tree's runs (the descendant limit) without walking it.
    with op.batch_alter_table("workflow_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("root_run_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_workflow_runs_root_run_id"), ["root_run_id"])
        batch_op.create_index("ix_workflow_runs_org_status", ["organization_id", "status"])


def downgrade() -> None:
    with op.batch_alter_table("workflow_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_runs_org_status")
        batch_op.drop_index(batch_op.f("ix_workflow_runs_root_run_id"))
        batch_op.drop_column("root_run_id")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_org_status_id")
    op.drop_table("organization_spend")
    op.drop_table("cache_versions")
