"""HTTP routes for galleries: listing and reading (seed surface), and curation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.audit.actions import audited
from fabric_server.galleries import repository
from fabric_server.galleries.models import Gallery, GalleryItem
from fabric_server.galleries.schemas import (
    DeletedOut,
    GalleryCreate,
    GalleryItemCreate,
    GalleryItemOut,
    GalleryOut,
)
from fabric_server.galleries.service import GalleryService
from fabric_server.services import Services

router = APIRouter(tags=["galleries"], responses=ERROR_RESPONSES)


def _service(services: Services) -> GalleryService:
    return services.galleries


@router.get(
    "/v1/galleries",
    response_model=Envelope[list[GalleryOut]],
    summary="Public galleries and the organization's",
)
async def list_galleries(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    organization_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> JSONResponse:
    async with services.db.read() as session:
        galleries = await _service(services).visible(
            session,
            principal,
            organization_id=organization_id,
            kind=kind.strip().lower() if kind else None,
            limit=limit,
        )
        counts = await repository.item_counts(session, [g.id for g in galleries])
    return ok(request, [gallery_out(g, counts.get(g.id, 0)) for g in galleries])


@router.post(
    "/v1/galleries",
    status_code=201,
    response_model=Envelope[GalleryOut],
    summary="Create a gallery (organization_id null: public, platform administrators only)",
)
@audited("gallery.create")
async def create_gallery(
    body: GalleryCreate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        gallery = await _service(services).create(session, principal, body)
        data = gallery_out(gallery, 0)
    return ok(request, data, 201)


@router.get("/v1/galleries/{gallery_id}", response_model=Envelope[GalleryOut], summary="A gallery")
async def get_gallery(
    gallery_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        gallery = await _service(services).get(session, principal, gallery_id)
        counts = await repository.item_counts(session, [gallery.id])
    return ok(request, gallery_out(gallery, counts.get(gallery.id, 0)))


@router.delete(
    "/v1/galleries/{gallery_id}",
    response_model=Envelope[DeletedOut],
    summary="Delete a gallery and its items",
)
@audited("gallery.delete")
async def delete_gallery(
    gallery_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        await _service(services).delete(session, principal, gallery_id)
    return ok(request, DeletedOut(id=gallery_id, deleted=True))


@router.get(
    "/v1/galleries/{gallery_id}/items",
    response_model=Envelope[list[GalleryItemOut]],
    summary="Items of a gallery; with tags=a,b only those carrying every one of them",
)
async def list_items(
    gallery_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    tags: Annotated[
        list[str] | None, Query(description="Comma-joined; items must have all of them")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    after: Annotated[
        str | None, Query(max_length=64, description="The id of the last item already seen")
    ] = None,
) -> JSONResponse:
    async with services.db.read() as session:
        items = await _service(services).items(
            session, principal, gallery_id, tags=tags or [], limit=limit, after=after
        )
        tags_by_item = await repository.tags_of(session, [i.id for i in items])
    return ok(request, [item_out(i, tags_by_item[i.id]) for i in items])


@router.post(
    "/v1/galleries/{gallery_id}/items",
    status_code=201,
    response_model=Envelope[GalleryItemOut],
    summary="Add an item: exactly one of url and asset_id, with tags",
)
@audited("item.add")
async def add_item(
    gallery_id: str,
    body: GalleryItemCreate,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    async with services.db.write() as session:
        item = await _service(services).add_item(session, principal, gallery_id, body)
        data = item_out(item, sorted(body.tags))
    return ok(request, data, 201)


@router.delete(
    "/v1/gallery-items/{item_id}",
    response_model=Envelope[DeletedOut],
    summary="Delete a gallery item",
)
@audited("item.delete")
async def delete_item(
    item_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        await _service(services).delete_item(session, principal, item_id)
    return ok(request, DeletedOut(id=item_id, deleted=True))


def gallery_out(gallery: Gallery, item_count: int) -> GalleryOut:
    return GalleryOut(
        id=gallery.id,
        organization_id=gallery.organization_id,
        kind=gallery.kind,
        name=gallery.name,
        description=gallery.description,
        metadata=gallery.metadata_,
        public=gallery.organization_id is None,
        item_count=item_count,
        created_at=gallery.created_at,
        updated_at=gallery.updated_at,
    )


def item_out(item: GalleryItem, tags: list[str]) -> GalleryItemOut:
    return GalleryItemOut(
        id=item.id,
        gallery_id=item.gallery_id,
        url=item.url,
        asset_id=item.asset_id,
        title=item.title,
        tags=tags,
        metadata=item.metadata_,
        created_at=item.created_at,
    )
