"""`/docs` works offline: the page and every asset it loads come from the server itself."""

from __future__ import annotations

import re

import httpx


async def test_docs_and_every_asset_it_references_are_served_locally(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    references = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    references += re.findall(r"""url: ?["']([^"']+)["']""", page.text)
    assert references
    for reference in references:
        # Nothing from another origin: no CDN, no absolute URL at all.
        assert reference.startswith("/"), reference
        asset = await client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference
    assert "/openapi.json" in references
    kinds = {ref.rsplit(".", 1)[-1] for ref in references}
    assert {"js", "css"} <= kinds


async def test_a_missing_asset_is_the_error_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/assets/no-such-file.js")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_body_less_logout_is_an_empty_body(client: httpx.AsyncClient) -> None:
    # The wire contract: a body-less POST with a JSON content type is `{}`; logout's body is
    # optional in the schema, and without one the bearer token's session is signed out.
    response = await client.post("/v1/auth/logout", headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json()["data"] == {"revoked": 0}
    document = (await client.get("/openapi.json")).json()
    assert document["paths"]["/v1/auth/logout"]["post"]["requestBody"]["required"] is False


async def test_a_required_body_left_out_is_refused(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["paths"]["/v1/jobs"]["post"]["requestBody"]["required"] is True
    response = await client.post("/v1/jobs", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_failed"
