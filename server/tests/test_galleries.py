"""Galleries: the dev sample, public and organization listings, tag filters, curation, access."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from server_helpers import assert_error

from fabric_server.access.models import Membership
from fabric_server.galleries.seed import SAMPLE_GALLERY_ID
from fabric_server.orgs.models import Organization
from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID

ORG = DEFAULT_ORGANIZATION_ID


async def add_org(services: Services, principal_id: str, role: str) -> str:
    async with services.db.write() as session:
        org = Organization(slug=f"org-{uuid.uuid4().hex[:8]}", name="Other")
        session.add(org)
        await session.flush()
        session.add(Membership(organization_id=org.id, principal_id=principal_id, role=role))
        return org.id


async def create_gallery(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    headers = body.pop("headers", None)
    payload = {"kind": "style", "name": "House styles", **body}
    response = await client.post("/v1/galleries", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def add_item(
    client: httpx.AsyncClient, gallery_id: str, tags: list[str], **body: Any
) -> dict[str, Any]:
    payload = {"url": "https://example.com/a.png", "tags": tags, **body}
    response = await client.post(f"/v1/galleries/{gallery_id}/items", json=payload)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def item_titles(client: httpx.AsyncClient, gallery_id: str, **params: str) -> list[str]:
    response = await client.get(f"/v1/galleries/{gallery_id}/items", params=params)
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["data"]]


async def test_dev_mode_seeds_a_public_portrait_gallery(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/galleries", params={"organization_id": ORG, "kind": "portrait"}
    )

    assert response.status_code == 200
    (sample,) = response.json()["data"]
    assert sample["id"] == SAMPLE_GALLERY_ID
    assert sample["public"] is True
    assert sample["organization_id"] is None
    assert sample["item_count"] == 4
    assert sample["metadata"] == {"sample": True}

    items = (await client.get(f"/v1/galleries/{SAMPLE_GALLERY_ID}/items")).json()["data"]
    assert len(items) == 4
    assert all(i["url"].startswith("data:image/svg+xml;base64,") for i in items)
    assert all(i["title"].startswith("Sample portrait") for i in items)
    assert items[0]["tags"] == ["professional", "studio"]


async def test_tags_must_all_match(client: httpx.AsyncClient) -> None:
    gallery = SAMPLE_GALLERY_ID

    assert await item_titles(client, gallery, tags="professional") == [
        "Sample portrait: studio, professional",
        "Sample portrait: outdoor, professional",
    ]
    assert await item_titles(client, gallery, tags="professional,studio") == [
        "Sample portrait: studio, professional"
    ]
    assert await item_titles(client, gallery, tags=" Casual , OUTDOOR ") == [
        "Sample portrait: outdoor, casual"
    ]
    assert await item_titles(client, gallery, tags="professional,casual") == []
    assert await item_titles(client, gallery, tags="nobody-has-this") == []
    assert await item_titles(client, gallery, tags="not a tag!") == []
    assert len(await item_titles(client, gallery, tags=",")) == 4
    repeated = await client.get(
        f"/v1/galleries/{gallery}/items", params=[("tags", "casual"), ("tags", "studio")]
    )
    assert [i["title"] for i in repeated.json()["data"]] == ["Sample portrait: studio, casual"]


async def test_curating_an_organization_gallery(client: httpx.AsyncClient) -> None:
    gallery = await create_gallery(
        client, description="Looks we like", metadata={"owner": "design"}
    )
    assert gallery["organization_id"] == ORG
    assert gallery["public"] is False
    assert gallery["kind"] == "style"
    assert gallery["item_count"] == 0

    first = await add_item(client, gallery["id"], ["Warm", "film", "warm"], title="First")
    second = await add_item(
        client,
        gallery["id"],
        ["cool"],
        url=None,
        asset_id="asset-123",
        title="Second",
        metadata={"w": 512},
    )
    assert first["tags"] == ["film", "warm"]
    assert (second["asset_id"], second["url"], second["metadata"]) == (
        "asset-123",
        None,
        {"w": 512},
    )

    fetched = (await client.get(f"/v1/galleries/{gallery['id']}")).json()["data"]
    assert fetched["item_count"] == 2
    assert await item_titles(client, gallery["id"], tags="warm") == ["First"]
    assert await item_titles(client, gallery["id"], after=first["id"]) == ["Second"]
    assert await item_titles(client, gallery["id"], limit="1") == ["First"]

    deleted = await client.delete(f"/v1/gallery-items/{first['id']}")
    assert deleted.json()["data"] == {"id": first["id"], "deleted": True}
    assert await item_titles(client, gallery["id"]) == ["Second"]
    assert_error(await client.delete(f"/v1/gallery-items/{first['id']}"), 404, "not_found")

    assert (await client.delete(f"/v1/galleries/{gallery['id']}")).status_code == 200
    assert_error(await client.get(f"/v1/galleries/{gallery['id']}"), 404, "not_found")
    assert_error(await client.get(f"/v1/galleries/{gallery['id']}/items"), 404, "not_found")


async def test_listing_public_and_own_galleries_with_a_kind_filter(
    client: httpx.AsyncClient,
) -> None:
    mine = await create_gallery(client, kind="Persona", name="Personas")
    await create_gallery(client, kind="style", name="Styles")

    every = (await client.get("/v1/galleries", params={"organization_id": ORG})).json()["data"]
    assert [g["name"] for g in every] == ["Sample portraits", "Personas", "Styles"]
    personas = await client.get("/v1/galleries", params={"organization_id": ORG, "kind": "persona"})
    assert [g["id"] for g in personas.json()["data"]] == [mine["id"]]
    assert mine["kind"] == "persona"
    without_org = (await client.get("/v1/galleries")).json()["data"]
    assert len(without_org) == 3


async def test_invalid_galleries_and_items(client: httpx.AsyncClient) -> None:
    bad_kind = await client.post("/v1/galleries", json={"kind": "has space", "name": "x"})
    assert_error(bad_kind, 400, "validation_failed")
    assert_error(
        await client.post("/v1/galleries", json={"kind": "k", "name": ""}), 400, "validation_failed"
    )
    gallery = await create_gallery(client)
    path = f"/v1/galleries/{gallery['id']}/items"
    for body in (
        {"url": "https://example.com/x.png", "asset_id": "a"},
        {"tags": ["x"]},
        {"url": "javascript:alert(1)"},
        {"url": "ftp://example.com/x"},
        {"url": "https://example.com/x", "tags": ["no spaces allowed"]},
        {"url": "https://example.com/x", "tags": [f"t{i}" for i in range(33)]},
        {"url": "https://example.com/x", "surprise": True},
    ):
        assert_error(await client.post(path, json=body), 400, "validation_failed")
    data_url = await client.post(path, json={"url": "data:image/png;base64,iVBORw0KGgo="})
    assert data_url.status_code == 201
    assert_error(
        await client.get(path, params={"after": str(uuid.uuid4())}), 422, "validation_failed"
    )


async def test_other_organizations_galleries_are_invisible(
    client: httpx.AsyncClient, services: Services
) -> None:
    outsider = str(uuid.uuid4())
    theirs_org = await add_org(services, outsider, "owner")
    as_outsider = {"x-principal-id": outsider}
    created = await client.post(
        "/v1/galleries",
        json={"kind": "portrait", "name": "Acme team", "organization_id": theirs_org},
        headers=as_outsider,
    )
    assert created.status_code == 201
    theirs = created.json()["data"]
    item = await client.post(
        f"/v1/galleries/{theirs['id']}/items",
        json={"url": "https://example.com/t.png", "tags": ["x"]},
        headers=as_outsider,
    )
    assert item.status_code == 201

    listed = (await client.get("/v1/galleries", params={"kind": "portrait"})).json()["data"]
    assert [g["id"] for g in listed] == [SAMPLE_GALLERY_ID]
    gid = theirs["id"]
    assert_error(
        await client.get("/v1/galleries", params={"organization_id": theirs_org}), 404, "not_found"
    )
    assert_error(await client.get(f"/v1/galleries/{gid}"), 404, "not_found")
    assert_error(await client.get(f"/v1/galleries/{gid}/items"), 404, "not_found")
    assert_error(await client.delete(f"/v1/galleries/{gid}"), 404, "not_found")
    assert_error(
        await client.post(f"/v1/galleries/{gid}/items", json={"url": "https://e.com/x"}),
        404,
        "not_found",
    )
    assert_error(
        await client.delete(f"/v1/gallery-items/{item.json()['data']['id']}"), 404, "not_found"
    )
    # They, in turn, see the public sample and their own.
    seen = (await client.get("/v1/galleries", headers=as_outsider)).json()["data"]
    assert {g["id"] for g in seen} == {SAMPLE_GALLERY_ID, gid}


async def test_public_galleries_are_curated_by_platform_admins_only(
    client: httpx.AsyncClient, services: Services
) -> None:
    public = await create_gallery(client, organization_id=None, kind="persona", name="Shared")
    assert public["public"] is True
    assert public["organization_id"] is None

    someone = {"x-principal-id": str(uuid.uuid4())}
    refused = await client.post(
        "/v1/galleries", json={"kind": "k", "name": "n", "organization_id": None}, headers=someone
    )
    assert_error(refused, 403, "forbidden")
    assert_error(
        await client.delete(f"/v1/galleries/{SAMPLE_GALLERY_ID}", headers=someone), 403, "forbidden"
    )
    add = await client.post(
        f"/v1/galleries/{SAMPLE_GALLERY_ID}/items",
        json={"url": "https://example.com/x.png"},
        headers=someone,
    )
    assert_error(add, 403, "forbidden")
    # Anyone can read public galleries, even without any organization of their own.
    outsider_org = await add_org(services, str(uuid.uuid4()), "owner")
    assert outsider_org
    stranger = {"x-principal-id": str(uuid.uuid4())}
    read = await client.get(f"/v1/galleries/{public['id']}/items", headers=stranger)
    assert read.status_code == 200


async def test_viewers_read_members_curate(client: httpx.AsyncClient, services: Services) -> None:
    viewer, member = str(uuid.uuid4()), str(uuid.uuid4())
    org = await add_org(services, viewer, "viewer")
    async with services.db.write() as session:
        session.add(Membership(organization_id=org, principal_id=member, role="member"))
    gallery = await create_gallery(client, organization_id=org, headers={"x-principal-id": member})

    as_viewer = {"x-principal-id": viewer}
    assert (
        await client.get(f"/v1/galleries/{gallery['id']}", headers=as_viewer)
    ).status_code == 200
    refused = await client.post(
        f"/v1/galleries/{gallery['id']}/items",
        json={"url": "https://example.com/x.png"},
        headers=as_viewer,
    )
    assert_error(refused, 403, "forbidden")
    assert_error(
        await client.post(
            "/v1/galleries",
            json={"kind": "k", "name": "n", "organization_id": org},
            headers=as_viewer,
        ),
        403,
        "forbidden",
    )
