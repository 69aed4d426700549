"""SQL for galleries, their items and item tags."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.galleries.models import Gallery, GalleryItem, GalleryItemTag


async def get(session: AsyncSession, gallery_id: str) -> Gallery | None:
    return await session.get(Gallery, gallery_id)


async def visible(
    session: AsyncSession, org_ids: Sequence[str], *, kind: str | None, limit: int
) -> list[Gallery]:
    """Public galleries and those of `org_ids`, oldest first."""
    query = select(Gallery).where(
        or_(Gallery.organization_id.is_(None), Gallery.organization_id.in_(list(org_ids)))
    )
    if kind is not None:
        query = query.where(Gallery.kind == kind)
    rows = await session.scalars(query.order_by(Gallery.created_at, Gallery.id).limit(limit))
    return list(rows)


async def item_counts(session: AsyncSession, gallery_ids: Sequence[str]) -> dict[str, int]:
    if not gallery_ids:
        return {}
    query = (
        select(GalleryItem.gallery_id, func.count())
        .where(GalleryItem.gallery_id.in_(list(gallery_ids)))
        .group_by(GalleryItem.gallery_id)
    )
    return {gallery_id: count for gallery_id, count in await session.execute(query)}


async def add(session: AsyncSession, gallery: Gallery) -> Gallery:
    session.add(gallery)
    await session.flush()
    return gallery


async def remove(session: AsyncSession, gallery_id: str) -> None:
    """Delete a gallery with its items and tags (explicitly, not trusting cascades)."""
    await session.execute(delete(GalleryItemTag).where(GalleryItemTag.gallery_id == gallery_id))
    await session.execute(delete(GalleryItem).where(GalleryItem.gallery_id == gallery_id))
    await session.execute(delete(Gallery).where(Gallery.id == gallery_id))


async def get_item(session: AsyncSession, item_id: str) -> GalleryItem | None:
    return await session.get(GalleryItem, item_id)


async def add_item(session: AsyncSession, item: GalleryItem, tags: Sequence[str]) -> GalleryItem:
    session.add(item)
    await session.flush()
    for tag in tags:
        session.add(GalleryItemTag(item_id=item.id, tag=tag, gallery_id=item.gallery_id))
    await session.flush()
    return item


async def remove_item(session: AsyncSession, item_id: str) -> None:
    await session.execute(delete(GalleryItemTag).where(GalleryItemTag.item_id == item_id))
    await session.execute(delete(GalleryItem).where(GalleryItem.id == item_id))


async def items(
    session: AsyncSession,
    gallery_id: str,
    *,
    tags: Sequence[str],
    limit: int,
    after: GalleryItem | None,
) -> list[GalleryItem]:
    """Items of a gallery carrying every one of `tags`, oldest first, after `after`."""
    query = select(GalleryItem).where(GalleryItem.gallery_id == gallery_id)
    if tags:
        # An item qualifies when it has as many of the wanted tags as were asked for: the
        # (item, tag) primary key means no tag is counted twice.
        having_all = (
            select(GalleryItemTag.item_id)
            .where(GalleryItemTag.gallery_id == gallery_id, GalleryItemTag.tag.in_(list(tags)))
            .group_by(GalleryItemTag.item_id)
            .having(func.count() == len(tags))
        )
        query = query.where(GalleryItem.id.in_(having_all))
    if after is not None:
        query = query.where(
            or_(
                GalleryItem.created_at > after.created_at,
                and_(GalleryItem.created_at == after.created_at, GalleryItem.id > after.id),
            )
        )
    order = (GalleryItem.created_at, GalleryItem.id)
    return list(await session.scalars(query.order_by(*order).limit(limit)))


async def tags_of(session: AsyncSession, item_ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {item_id: [] for item_id in item_ids}
    if not item_ids:
        return found
    query = (
        select(GalleryItemTag.item_id, GalleryItemTag.tag)
        .where(GalleryItemTag.item_id.in_(list(item_ids)))
        .order_by(GalleryItemTag.item_id, GalleryItemTag.tag)
    )
    for item_id, tag in await session.execute(query):
        found[item_id].append(tag)
    return found
