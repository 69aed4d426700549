"""code workers: registrations of the processes that run workflow steps on users' machines

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fabric_server.db.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = fabric_server.db.types.UTCDateTime(timezone=True)
    op.create_table(
        "code_workers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "operations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("sdk_version", sa.String(length=64), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("registered_at", moment, nullable=False),
        sa.Column("last_seen_at", moment, nullable=False),
        sa.Column("stopped_at", moment, nullable=True),
        sa.Column("offline_at", moment, nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_code_workers_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_workers")),
    )
    op.create_index("ix_code_workers_org_id", "code_workers", ["organization_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_code_workers_org_id", table_name="code_workers")
    op.drop_table("code_workers")
