"""budgets: a monthly spending limit per organization, and its alerts fired this month

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 23:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fabric_server.db.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _json() -> sa.JSON:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "organization_budgets",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("monthly_limit_usd", sa.Float(), nullable=True),
        sa.Column("alert_thresholds", _json(), nullable=False),
        sa.Column(
            "alerts_period_start",
            fabric_server.db.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("thresholds_reached", _json(), nullable=False),
        sa.Column("updated_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", fabric_server.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", fabric_server.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_organization_budgets_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_organization_budgets")),
    )


def downgrade() -> None:
    op.drop_table("organization_budgets")
