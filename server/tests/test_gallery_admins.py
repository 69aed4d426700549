"""Platform administrators (FABRIC_PLATFORM_ADMINS) curate public galleries in production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth_helpers import app_client, bearer, signup
from server_helpers import assert_error
from tenancy_helpers import User, add_member, create_org, data, verified_user

from fabric_server.auth.platform import PlatformAdmins
from fabric_server.services import Services
from fabric_server.settings import Settings
from fabric_server.testing import fast_settings

CURATOR = "curator@example.com"
PUBLIC = {"kind": "persona", "name": "Shared personas", "organization_id": None}
ITEM = {"url": "https://example.com/p.png", "tags": ["studio"]}


@pytest.fixture
async def production(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    settings = fast_settings(
        database_url,
        tmp_path,
        env="production",
        signing_secret="s" * 32,
        secrets_master_key="k" * 32,
        # Case and spacing do not matter; the second address has no account.
        platform_admins=" Curator@Example.COM ,ops@example.com",
    )
    async with app_client(settings) as pair:
        yield pair


async def public_gallery(client: httpx.AsyncClient, curator: User) -> dict[str, Any]:
    created: dict[str, Any] = data(
        await client.post("/v1/galleries", json=PUBLIC, headers=curator.headers), 201
    )
    return created


def assert_refused(response: httpx.Response) -> None:
    body = assert_error(response, 403, "forbidden")
    assert "FABRIC_PLATFORM_ADMINS" in body["error"]["message"]


async def test_a_listed_verified_user_curates_public_galleries(
    production: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = production
    curator = await verified_user(client, services, CURATOR)
    assert data(await client.get("/v1/me", headers=curator.headers))["platform_admin"] is True

    gallery = await public_gallery(client, curator)
    assert (gallery["public"], gallery["organization_id"]) == (True, None)
    item = data(
        await client.post(
            f"/v1/galleries/{gallery['id']}/items", json=ITEM, headers=curator.headers
        ),
        201,
    )
    # Every signed-in user reads it.
    reader = await verified_user(client, services, "reader@example.com")
    listed = data(await client.get("/v1/galleries", headers=reader.headers))
    assert [g["id"] for g in listed] == [gallery["id"]]
    items = data(await client.get(f"/v1/galleries/{gallery['id']}/items", headers=reader.headers))
    assert [i["id"] for i in items] == [item["id"]]

    deleted = await client.delete(f"/v1/gallery-items/{item['id']}", headers=curator.headers)
    assert data(deleted) == {"id": item["id"], "deleted": True}
    gone = await client.delete(f"/v1/galleries/{gallery['id']}", headers=curator.headers)
    assert data(gone) == {"id": gallery["id"], "deleted": True}
    assert_error(
        await client.get(f"/v1/galleries/{gallery['id']}", headers=reader.headers),
        404,
        "not_found",
    )


async def test_an_unlisted_user_is_refused(
    production: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = production
    curator = await verified_user(client, services, CURATOR)
    gallery = await public_gallery(client, curator)
    item = data(
        await client.post(
            f"/v1/galleries/{gallery['id']}/items", json=ITEM, headers=curator.headers
        ),
        201,
    )

    someone = await verified_user(client, services, "someone@example.com")
    assert data(await client.get("/v1/me", headers=someone.headers))["platform_admin"] is False
    assert_refused(await client.post("/v1/galleries", json=PUBLIC, headers=someone.headers))
    assert_refused(
        await client.post(
            f"/v1/galleries/{gallery['id']}/items", json=ITEM, headers=someone.headers
        )
    )
    assert_refused(await client.delete(f"/v1/gallery-items/{item['id']}", headers=someone.headers))
    assert_refused(await client.delete(f"/v1/galleries/{gallery['id']}", headers=someone.headers))
    still = data(await client.get(f"/v1/galleries/{gallery['id']}", headers=someone.headers))
    assert still["item_count"] == 1


async def test_a_listed_email_must_be_verified(
    production: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = production
    unverified = bearer(await signup(client, CURATOR))
    me = data(await client.get("/v1/me", headers=unverified))
    assert (me["email"], me["email_verified"], me["platform_admin"]) == (CURATOR, False, False)
    assert_refused(await client.post("/v1/galleries", json=PUBLIC, headers=unverified))


async def test_an_api_key_never_acts_as_a_platform_admin(
    production: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = production
    curator = await verified_user(client, services, CURATOR)
    gallery = await public_gallery(client, curator)
    org = await create_org(client, curator, "curators")
    created = await client.post(
        "/v1/api-keys",
        json={"name": "ci", "organization_id": org["id"]},
        headers=curator.headers,
    )
    key = {"authorization": f"Bearer {data(created, 201)['key']}"}

    assert data(await client.get("/v1/me", headers=key))["platform_admin"] is False
    assert_refused(await client.post("/v1/galleries", json=PUBLIC, headers=key))
    assert_refused(
        await client.post(f"/v1/galleries/{gallery['id']}/items", json=ITEM, headers=key)
    )
    assert_refused(await client.delete(f"/v1/galleries/{gallery['id']}", headers=key))
    # It still curates its own organization's galleries.
    own = {"kind": "style", "name": "Ours", "organization_id": org["id"]}
    assert data(await client.post("/v1/galleries", json=own, headers=key), 201)["public"] is False


async def test_organization_admins_still_curate_their_galleries(
    production: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = production
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    admin = await add_member(client, services, owner, org["id"], "admin@example.com", "admin")

    body = {"kind": "style", "name": "House styles", "organization_id": org["id"]}
    gallery = data(await client.post("/v1/galleries", json=body, headers=admin.headers), 201)
    assert (gallery["public"], gallery["organization_id"]) == (False, org["id"])
    item = data(
        await client.post(f"/v1/galleries/{gallery['id']}/items", json=ITEM, headers=admin.headers),
        201,
    )
    assert data(await client.delete(f"/v1/gallery-items/{item['id']}", headers=admin.headers))
    assert data(await client.delete(f"/v1/galleries/{gallery['id']}", headers=admin.headers))
    # Their role in an organization does not make them platform administrators.
    assert_refused(await client.post("/v1/galleries", json=PUBLIC, headers=admin.headers))


async def test_a_listed_user_is_a_platform_admin_in_dev_mode_too(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path, platform_admins=CURATOR)
    async with app_client(settings) as (client, services):
        curator = await verified_user(client, services, CURATOR)
        someone = await verified_user(client, services, "someone@example.com")

        assert data(await client.post("/v1/galleries", json=PUBLIC, headers=curator.headers), 201)
        assert_refused(await client.post("/v1/galleries", json=PUBLIC, headers=someone.headers))
        # The dev owner (no credentials) still is one; other dev principals are not.
        assert data(await client.post("/v1/galleries", json=PUBLIC), 201)["public"] is True
        asserted = {"x-principal-id": someone.id}
        assert_refused(await client.post("/v1/galleries", json=PUBLIC, headers=asserted))


def test_a_malformed_address_in_the_setting_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="FABRIC_PLATFORM_ADMINS: 'not-an-email'"):
        PlatformAdmins.from_settings(Settings(platform_admins="ok@example.com, not-an-email"))
    assert PlatformAdmins.from_settings(Settings(platform_admins=" , ")).emails == frozenset()
