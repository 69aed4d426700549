"""Galleries: curated collections of reference assets (portraits, personas, styles…)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, List, Optional, Union, cast

from ._base import QueryValue, encode_path, query
from ._core import AsyncClientCore, SyncClientCore
from ._paging import aiterate_pages, iterate_pages
from .types import DeleteResult, Gallery, GalleryItem

GALLERIES_PATH = "/v1/galleries"
Tags = Union[str, Sequence[str], None]


def _joined(tags: Tags) -> Optional[str]:
    # Lists travel as one comma-joined parameter (wire-spec §2).
    if tags is None:
        return None
    return tags if isinstance(tags, str) else ",".join(tags)


def _list_params(
    kind: Optional[str], organization_id: Optional[str], limit: Optional[int]
) -> dict[str, QueryValue]:
    return query(organization_id=organization_id, kind=kind, limit=limit)


def _items_params(tags: Tags, limit: Optional[int], after: Optional[str]) -> dict[str, QueryValue]:
    return query(tags=_joined(tags) or None, limit=limit, after=after)


def _gallery_body(
    kind: str,
    name: str,
    description: Optional[str],
    metadata: Optional[Mapping[str, Any]],
    organization_id: Optional[str],
    public: bool,
) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "name": name}
    if public:
        body["organization_id"] = None  # an explicit null asks for a platform-wide gallery
    elif organization_id is not None:  # unknown: the server uses the API key's organization
        body["organization_id"] = organization_id
    if description is not None:
        body["description"] = description
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return body


def _item_body(
    url: Optional[str],
    asset_id: Optional[str],
    tags: Optional[Sequence[str]],
    title: Optional[str],
    metadata: Optional[Mapping[str, Any]],
) -> dict[str, Any]:
    body: dict[str, Any] = {"tags": [tags] if isinstance(tags, str) else list(tags or [])}
    optional = {"url": url, "asset_id": asset_id, "title": title}
    body.update({name: value for name, value in optional.items() if value is not None})
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return body


class GalleriesMethods(SyncClientCore):
    def list_galleries(
        self,
        kind: Optional[str] = None,
        *,
        organization_id: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> List[Gallery]:
        """Public galleries and those of the organization (the client's by default),
        optionally of one ``kind``; at most ``limit`` of them (server default 200)."""
        params = _list_params(kind, organization_id or self.organization_id, limit)
        return cast(List[Gallery], self._request("GET", GALLERIES_PATH, params=params))

    def list_gallery_items(
        self,
        gallery_id: str,
        tags: Tags = None,
        *,
        limit: Optional[int] = None,
        after: Optional[str] = None,
    ) -> List[GalleryItem]:
        """The gallery's items, oldest first; with ``tags`` only the items carrying every one
        of them. ``after`` (an item id) continues a listing cut short by ``limit``;
        `iter_gallery_items` does that for you."""
        path = encode_path("/v1/galleries/{}/items", gallery_id)
        params = _items_params(tags, limit, after)
        return cast(List[GalleryItem], self._request("GET", path, params=params))

    def iter_gallery_items(
        self, gallery_id: str, tags: Tags = None, *, page_size: int = 200
    ) -> Iterator[GalleryItem]:
        """Every item of the gallery (with ``tags``: carrying all of them), oldest first,
        fetching ``page_size`` at a time as iteration needs them."""
        yield from iterate_pages(
            lambda after: self.list_gallery_items(gallery_id, tags, limit=page_size, after=after),
            page_size,
        )

    def get_gallery(self, gallery_id: str) -> Gallery:
        """The gallery ``gallery_id``, with its ``item_count``."""
        return cast(Gallery, self._request("GET", encode_path("/v1/galleries/{}", gallery_id)))

    def create_gallery(
        self,
        kind: str,
        name: str,
        *,
        description: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        organization_id: Optional[str] = None,
        public: bool = False,
    ) -> Gallery:
        """Create a gallery in the organization (the client's by default); ``public=True``
        makes a platform-wide one, which only platform administrators may do."""
        org = organization_id or self.organization_id
        body = _gallery_body(kind, name, description, metadata, org, public)
        return cast(Gallery, self._request("POST", GALLERIES_PATH, body=body))

    def delete_gallery(self, gallery_id: str) -> DeleteResult:
        """Delete the gallery and all its items."""
        path = encode_path("/v1/galleries/{}", gallery_id)
        return cast(DeleteResult, self._request("DELETE", path))

    def add_gallery_item(
        self,
        gallery_id: str,
        *,
        url: Optional[str] = None,
        asset_id: Optional[str] = None,
        tags: Optional[Sequence[str]] = None,
        title: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> GalleryItem:
        """Add an item given by exactly one of ``url`` (http(s) or data:) and ``asset_id``."""
        path = encode_path("/v1/galleries/{}/items", gallery_id)
        body = _item_body(url, asset_id, tags, title, metadata)
        return cast(GalleryItem, self._request("POST", path, body=body))

    def delete_gallery_item(self, item_id: str) -> DeleteResult:
        """Delete one item of a gallery."""
        path = encode_path("/v1/gallery-items/{}", item_id)
        return cast(DeleteResult, self._request("DELETE", path))


class AsyncGalleriesMethods(AsyncClientCore):
    async def list_galleries(
        self,
        kind: Optional[str] = None,
        *,
        organization_id: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> List[Gallery]:
        """Public galleries and those of the organization (the client's by default)."""
        params = _list_params(kind, organization_id or self.organization_id, limit)
        return cast(List[Gallery], await self._request("GET", GALLERIES_PATH, params=params))

    async def list_gallery_items(
        self,
        gallery_id: str,
        tags: Tags = None,
        *,
        limit: Optional[int] = None,
        after: Optional[str] = None,
    ) -> List[GalleryItem]:
        """The gallery's items; with ``tags`` only those carrying every one of them."""
        path = encode_path("/v1/galleries/{}/items", gallery_id)
        params = _items_params(tags, limit, after)
        return cast(List[GalleryItem], await self._request("GET", path, params=params))

    async def iter_gallery_items(
        self, gallery_id: str, tags: Tags = None, *, page_size: int = 200
    ) -> AsyncIterator[GalleryItem]:
        """Every item of the gallery (``async for``), fetching pages as needed."""
        pages = aiterate_pages(
            lambda after: self.list_gallery_items(gallery_id, tags, limit=page_size, after=after),
            page_size,
        )
        async for item in pages:
            yield item

    async def get_gallery(self, gallery_id: str) -> Gallery:
        """The gallery ``gallery_id``, with its ``item_count``."""
        path = encode_path("/v1/galleries/{}", gallery_id)
        return cast(Gallery, await self._request("GET", path))

    async def create_gallery(
        self,
        kind: str,
        name: str,
        *,
        description: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        organization_id: Optional[str] = None,
        public: bool = False,
    ) -> Gallery:
        """Create a gallery; ``public=True`` makes a platform-wide one (administrators)."""
        org = organization_id or self.organization_id
        body = _gallery_body(kind, name, description, metadata, org, public)
        return cast(Gallery, await self._request("POST", GALLERIES_PATH, body=body))

    async def delete_gallery(self, gallery_id: str) -> DeleteResult:
        """Delete the gallery and all its items."""
        path = encode_path("/v1/galleries/{}", gallery_id)
        return cast(DeleteResult, await self._request("DELETE", path))

    async def add_gallery_item(
        self,
        gallery_id: str,
        *,
        url: Optional[str] = None,
        asset_id: Optional[str] = None,
        tags: Optional[Sequence[str]] = None,
        title: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> GalleryItem:
        """Add an item given by exactly one of ``url`` and ``asset_id``."""
        path = encode_path("/v1/galleries/{}/items", gallery_id)
        body = _item_body(url, asset_id, tags, title, metadata)
        return cast(GalleryItem, await self._request("POST", path, body=body))

    async def delete_gallery_item(self, item_id: str) -> DeleteResult:
        """Delete one item of a gallery."""
        path = encode_path("/v1/gallery-items/{}", item_id)
        return cast(DeleteResult, await self._request("DELETE", path))
