"""security hardening: who set each organization secret's value, and sign-in throttles per
account and client address

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fabric_server.db.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("org_secrets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_by", sa.String(length=36), nullable=True))
    # The best knowledge of who set a value stored before: whoever created the secret.
    op.execute("UPDATE org_secrets SET updated_by = created_by")
    op.create_table(
        "sign_in_throttles",
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column(
            "window_started_at", fabric_server.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("locked_until", fabric_server.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", fabric_server.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_key", "address", name=op.f("pk_sign_in_throttles")),
    )
    with op.batch_alter_table("sign_in_throttles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_in_throttles_updated_at"), ["updated_at"])


def downgrade() -> None:
    with op.batch_alter_table("sign_in_throttles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_throttles_updated_at"))
    op.drop_table("sign_in_throttles")
    with op.batch_alter_table("org_secrets", schema=None) as batch_op:
        batch_op.drop_column("updated_by")
