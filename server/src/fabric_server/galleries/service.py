"""Business rules for galleries: who sees and who curates them.

An organization's galleries are read with `gallery.read` and curated with `gallery.manage`
in that organization; another organization's gallery is simply not found. Public galleries
(no organization) are visible to every caller and curated only by platform administrators.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.access.scope import caller_organization
from fabric_server.access.service import Access
from fabric_server.auth.platform import HOW_TO_BECOME_ONE, PlatformAdmins
from fabric_server.errors import Forbidden, NotFound, Unprocessable
from fabric_server.galleries import repository
from fabric_server.galleries.models import Gallery, GalleryItem
from fabric_server.galleries.schemas import (
    MAX_TAGS,
    NAME_PATTERN,
    GalleryCreate,
    GalleryItemCreate,
)

READ_ACTION = "gallery.read"
MANAGE_ACTION = "gallery.manage"


class GalleryService:
    def __init__(self, access: Access, platform_admins: PlatformAdmins) -> None:
        self.access = access
        self.platform_admins = platform_admins

    async def visible(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        organization_id: str | None,
        kind: str | None,
        limit: int,
    ) -> list[Gallery]:
        """Public galleries plus those of `organization_id` (else of every organization the
        caller may read galleries in)."""
        if organization_id is not None:
            await self.access.authorize(session, principal, organization_id, READ_ACTION)
            org_ids = [organization_id]
        else:
            org_ids = [
                org_id
                for org_id in await self.access.visible_org_ids(session, principal)
                if await self._may(session, principal, org_id, READ_ACTION)
            ]
        return await repository.visible(session, org_ids, kind=kind, limit=limit)

    async def get(self, session: AsyncSession, principal: Principal, gallery_id: str) -> Gallery:
        gallery = await repository.get(session, gallery_id)
        if gallery is None:
            raise NotFound(f"Gallery {gallery_id} was not found.")
        if gallery.organization_id is not None:
            await self._authorize(session, principal, gallery, READ_ACTION)
        return gallery

    async def create(
        self, session: AsyncSession, principal: Principal, body: GalleryCreate
    ) -> Gallery:
        if "organization_id" in body.model_fields_set and body.organization_id is None:
            await self._require_platform_admin(session, principal, "create public galleries")
            org_id = None
        else:
            org_id = await caller_organization(
                self.access, session, principal, body.organization_id
            )
            if org_id is None:
                raise Unprocessable(
                    "organization_id is required: no single organization of yours applies."
                )
            await self.access.authorize(session, principal, org_id, MANAGE_ACTION)
        gallery = Gallery(
            organization_id=org_id,
            kind=body.kind,
            name=body.name,
            description=body.description,
            metadata_=body.metadata,
            created_by=principal.id,
        )
        return await repository.add(session, gallery)

    async def delete(self, session: AsyncSession, principal: Principal, gallery_id: str) -> None:
        gallery = await self._managed(session, principal, gallery_id)
        await repository.remove(session, gallery.id)

    async def items(
        self,
        session: AsyncSession,
        principal: Principal,
        gallery_id: str,
        *,
        tags: Sequence[str],
        limit: int,
        after: str | None,
    ) -> list[GalleryItem]:
        gallery = await self.get(session, principal, gallery_id)
        wanted = parse_tags(tags)
        if wanted is None:
            return []  # a tag no item can carry
        after_item = None
        if after is not None:
            after_item = await repository.get_item(session, after)
            if after_item is None or after_item.gallery_id != gallery.id:
                raise Unprocessable(f"after: item {after} is not in this gallery.")
        return await repository.items(
            session, gallery.id, tags=wanted, limit=limit, after=after_item
        )

    async def add_item(
        self, session: AsyncSession, principal: Principal, gallery_id: str, body: GalleryItemCreate
    ) -> GalleryItem:
        gallery = await self._managed(session, principal, gallery_id)
        item = GalleryItem(
            gallery_id=gallery.id,
            url=body.url,
            asset_id=body.asset_id,
            title=body.title,
            metadata_=body.metadata,
            created_by=principal.id,
        )
        return await repository.add_item(session, item, body.tags)

    async def delete_item(self, session: AsyncSession, principal: Principal, item_id: str) -> None:
        item = await repository.get_item(session, item_id)
        if item is None:
            raise NotFound(f"Gallery item {item_id} was not found.")
        try:
            await self._managed(session, principal, item.gallery_id)
        except NotFound:
            raise NotFound(f"Gallery item {item_id} was not found.") from None
        await repository.remove_item(session, item.id)

    async def _managed(
        self, session: AsyncSession, principal: Principal, gallery_id: str
    ) -> Gallery:
        gallery = await self.get(session, principal, gallery_id)
        if gallery.organization_id is None:
            await self._require_platform_admin(session, principal, "change public galleries")
        else:
            await self._authorize(session, principal, gallery, MANAGE_ACTION)
        return gallery

    async def _require_platform_admin(
        self, session: AsyncSession, principal: Principal, what: str
    ) -> None:
        if not await self.platform_admins.check(session, principal):
            raise Forbidden(f"Only platform administrators may {what}: {HOW_TO_BECOME_ONE}.")

    async def _authorize(
        self, session: AsyncSession, principal: Principal, gallery: Gallery, action: str
    ) -> None:
        assert gallery.organization_id is not None
        try:
            await self.access.authorize(session, principal, gallery.organization_id, action)
        except NotFound:
            raise NotFound(f"Gallery {gallery.id} was not found.") from None

    async def _may(
        self, session: AsyncSession, principal: Principal, org_id: str, action: str
    ) -> bool:
        try:
            await self.access.authorize(session, principal, org_id, action)
        except (NotFound, Forbidden):
            return False
        return True


def parse_tags(raw: Sequence[str]) -> list[str] | None:
    """The wanted tags (comma-joined values split, normalized, deduplicated); None when one
    of them is not a valid tag, so that nothing can match."""
    tags: list[str] = []
    for value in raw:
        for part in value.split(","):
            tag = part.strip().lower()
            if not tag:
                continue
            if not NAME_PATTERN.match(tag):
                return None
            if tag not in tags:
                tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise Unprocessable(f"tags: at most {MAX_TAGS} tags can be asked for at once.")
    return tags
