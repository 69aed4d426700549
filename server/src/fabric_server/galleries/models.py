"""Gallery tables: curated collections of reference assets, and their tagged items.

Tags live in their own table (one row per item and tag) so "items having all of these tags"
is a plain GROUP BY … HAVING on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fabric_server.db.base import Base, Timestamped
from fabric_server.db.types import JSONType, new_id, utcnow


class Gallery(Timestamped, Base):
    """A gallery of one organization, or a public one (`organization_id` null)."""

    __tablename__ = "galleries"
    __table_args__ = (Index("ix_galleries_org_kind", "organization_id", "kind"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    # `metadata` is taken on declarative classes, hence the attribute name.
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    created_by: Mapped[str | None] = mapped_column(String(36))


class GalleryItem(Base):
    __tablename__ = "gallery_items"
    __table_args__ = (Index("ix_gallery_items_gallery", "gallery_id", "id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    gallery_id: Mapped[str] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"))
    url: Mapped[str | None] = mapped_column(Text)
    asset_id: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(300))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GalleryItemTag(Base):
    __tablename__ = "gallery_item_tags"
    __table_args__ = (Index("ix_gallery_item_tags_lookup", "gallery_id", "tag", "item_id"),)
    item_id: Mapped[str] = mapped_column(
        ForeignKey("gallery_items.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    gallery_id: Mapped[str] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"))
