"""schedules: cron schedules of workflows and their firing history

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 19:42:47.806169
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fabric_server.db.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("workflow_definition_id", sa.String(length=36), nullable=False),
        sa.Column("cron_expression", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("concurrency_policy", sa.String(length=16), nullable=False),
        sa.Column("catchup_policy", sa.String(length=16), nullable=False),
        sa.Column(
            "input_context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("next_run_at", fabric_server.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", fabric_server.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_run_id", sa.String(length=36), nullable=True),
        sa.Column("fire_count", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", fabric_server.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", fabric_server.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_schedules_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workflow_definition_id"],
            ["workflow_definitions.id"],
            name=op.f("fk_schedules_workflow_definition_id_workflow_definitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.create_index(
            "ix_schedules_definition", ["workflow_definition_id", "id"], unique=False
        )
        batch_op.create_index("ix_schedules_next_run_at", ["next_run_at"], unique=False)

    op.create_table(
        "schedule_firings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("schedule_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column(
            "scheduled_for", fabric_server.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("fired_at", fabric_server.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=8), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_firings_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_firings")),
        sa.UniqueConstraint("schedule_id", "scheduled_for", name="uq_schedule_firings_occurrence"),
        sa.UniqueConstraint("schedule_id", "sequence", name="uq_schedule_firings_sequence"),
    )
    with op.batch_alter_table("schedule_firings", schema=None) as batch_op:
        batch_op.create_index("ix_schedule_firings_held", ["held", "schedule_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("schedule_firings", schema=None) as batch_op:
        batch_op.drop_index("ix_schedule_firings_held")

    op.drop_table("schedule_firings")
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.drop_index("ix_schedules_next_run_at")
        batch_op.drop_index("ix_schedules_definition")

    op.drop_table("schedules")
