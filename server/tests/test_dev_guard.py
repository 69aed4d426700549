"""Dev mode keeps web pages from acting as the dev owner: DNS rebinding (a foreign Host)
and cross-site requests (Origin, Sec-Fetch-Site, form content types) are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from server_helpers import assert_error
from workflow_helpers import app_client

from fabric_server.settings import DEFAULT_ORGANIZATION_ID
from fabric_server.testing import fast_settings

ARCHIVE = f"/v1/organizations/{DEFAULT_ORGANIZATION_ID}/archive"


@pytest.fixture
async def dev(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(fast_settings(database_url, tmp_path)) as (client, _services):
        client.base_url = httpx.URL("http://127.0.0.1:3001")
        yield client


async def _org_status(client: httpx.AsyncClient) -> str:
    response = await client.get(f"/v1/organizations/{DEFAULT_ORGANIZATION_ID}")
    assert response.status_code == 200, response.text
    return str(response.json()["data"].get("status", "active"))


async def test_a_foreign_host_is_refused_on_loopback(dev: httpx.AsyncClient) -> None:
    for host in ("evil.example", "evil.example:3001", "127.0.0.1.nip.io"):
        body = assert_error(await dev.get("/v1/jobs", headers={"host": host}), 403, "forbidden")
        assert body["error"]["details"] == {"reason": "host"}
    for host in ("localhost:3001", "127.0.0.1", "[::1]:3001", "LOCALHOST"):
        assert (await dev.get("/v1/jobs", headers={"host": host})).status_code == 200


async def test_cross_site_changes_are_refused(dev: httpx.AsyncClient) -> None:
    before = await _org_status(dev)
    refused = [
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "multipart/form-data; boundary=x"},
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
    ]
    for headers in refused:
        response = await dev.post(ARCHIVE, content=b"{}", headers=headers)
        body = assert_error(response, 403, "forbidden")
        assert body["error"]["details"]["reason"] in ("cross_site", "content_type")
    assert await _org_status(dev) == before
    # The same site, and clients that are not browsers, work as before.
    job = {"modality": "text", "input": {"prompt": "hi"}}
    for headers in (
        {},
        {"origin": "http://localhost:3001"},
        {"origin": "http://127.0.0.1:5173", "sec-fetch-site": "same-site"},
    ):
        assert (await dev.post("/v1/jobs", json=job, headers=headers)).status_code == 201
    # Reading stays open to any page's navigation (a GET changes nothing).
    assert (await dev.get("/v1/jobs", headers={"sec-fetch-site": "cross-site"})).status_code == 200


async def test_on_an_acknowledged_network_address_any_host_is_answered(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(
        database_url, tmp_path, host="0.0.0.0", dev_mode_on_network=True, dev_allowed_hosts=[]
    )
    async with app_client(settings) as (client, _services):
        assert (await client.get("/v1/jobs", headers={"host": "devbox.lan"})).status_code == 200
        refused = await client.post(ARCHIVE, headers={"origin": "https://evil.example"})
        assert_error(refused, 403, "forbidden")
