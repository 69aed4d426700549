"""providers and galleries: gallery tables, API key on jobs, usage by period

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fabric_server.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_TIME = fabric_server.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "galleries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", _JSON, nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_galleries_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_galleries")),
    )
    with op.batch_alter_table("galleries", schema=None) as batch_op:
        batch_op.create_index("ix_galleries_org_kind", ["organization_id", "kind"], unique=False)

    op.create_table(
        "gallery_items",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("gallery_id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("asset_id", sa.String(length=200), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=True),
        sa.Column("metadata", _JSON, nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["gallery_id"],
            ["galleries.id"],
            name=op.f("fk_gallery_items_gallery_id_galleries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gallery_items")),
    )
    with op.batch_alter_table("gallery_items", schema=None) as batch_op:
        batch_op.create_index("ix_gallery_items_gallery", ["gallery_id", "id"], unique=False)

    op.create_table(
        "gallery_item_tags",
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("gallery_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["gallery_id"],
            ["galleries.id"],
            name=op.f("fk_gallery_item_tags_gallery_id_galleries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["gallery_items.id"],
            name=op.f("fk_gallery_item_tags_item_id_gallery_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", "tag", name=op.f("pk_gallery_item_tags")),
    )
    with op.batch_alter_table("gallery_item_tags", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gallery_item_tags_lookup", ["gallery_id", "tag", "item_id"], unique=False
        )

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_key_id", sa.String(length=36), nullable=True))

    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_records_org_created", ["organization_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_records_org_created")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("api_key_id")

    with op.batch_alter_table("gallery_item_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_gallery_item_tags_lookup")
    op.drop_table("gallery_item_tags")

    with op.batch_alter_table("gallery_items", schema=None) as batch_op:
        batch_op.drop_index("ix_gallery_items_gallery")
    op.drop_table("gallery_items")

    with op.batch_alter_table("galleries", schema=None) as batch_op:
        batch_op.drop_index("ix_galleries_org_kind")
    op.drop_table("galleries")
