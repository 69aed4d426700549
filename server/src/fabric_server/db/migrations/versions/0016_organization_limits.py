"""organization limits: an organization's own caps on unfinished jobs and runs

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 08:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fabric_server.db.types

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = fabric_server.db.types.UTCDateTime(timezone=True)
    op.create_table(
        "organization_limits",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("max_active_jobs", sa.Integer(), nullable=True),
        sa.Column("max_active_runs", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("updated_at", moment, nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_organization_limits_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_organization_limits")),
    )


def downgrade() -> None:
    op.drop_table("organization_limits")
