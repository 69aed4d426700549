"""An open event stream ends once its caller loses access: signed out, key disabled,
removed from the organization."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from fabric_server.settings import DEFAULT_ORGANIZATION_ID
from fabric_server.testing import LiveServer, fast_settings


def _read_until_closed(
    client: httpx.Client, path: str, headers: dict[str, str], revoke: Any
) -> tuple[str, float]:
    """Open the stream, revoke access once it is open, and read it to its end."""
    with client.stream("GET", path, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines) == ": connected"
        revoke()
        revoked_at = time.monotonic()
        text = "\n".join(lines)
    return text, time.monotonic() - revoked_at


def test_streams_end_after_sign_out_and_when_the_key_is_disabled(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(
        database_url,
        tmp_path,
        env="production",
        signing_secret="s" * 32,
        secrets_master_key="k" * 32,
        sse_recheck_seconds=0.2,
        sse_max_connection_seconds=20,  # without re-checks, streams would end only then
    )
    with (
        LiveServer(settings) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        signup = client.post(
            "/v1/auth/signup", json={"email": "ada@example.com", "password": "correct horse 1"}
        )
        assert signup.status_code == 201, signup.text
        user = {"authorization": f"Bearer {signup.json()['data']['access_token']}"}
        orgs = client.get("/v1/organizations", headers=user).json()["data"]
        org_id = orgs[0]["id"]
        created = client.post(
            "/v1/api-keys", json={"name": "stream", "organization_id": org_id}, headers=user
        )
        assert created.status_code == 201, created.text
        key = created.json()["data"]
        with_key = {"authorization": f"Bearer {key['key']}"}

        def disable() -> None:
            response = client.post(f"/v1/api-keys/{key['id']}/disable", headers=user)
            assert response.status_code == 200, response.text

        text, took = _read_until_closed(client, "/v1/events/stream", with_key, disable)
        assert "event: reconnect" in text
        assert took < 10
        assert client.get("/v1/events/stream", headers=with_key).status_code == 401

        def sign_out() -> None:
            response = client.post("/v1/auth/logout", json={}, headers=user)
            assert response.status_code in (200, 204), response.text

        path = f"/v1/events/stream?organization_id={org_id}"
        text, took = _read_until_closed(client, path, user, sign_out)
        assert "event: reconnect" in text
        assert took < 10
        assert client.get(path, headers=user).status_code == 401


def test_a_stream_ends_when_its_reader_leaves_the_organization(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(
        database_url, tmp_path, sse_recheck_seconds=0.2, sse_max_connection_seconds=20
    )
    with (
        LiveServer(settings) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        # Dev mode: anonymous calls are the dev owner of the default organization, and
        # accounts signed up join it.
        email = "member@example.com"
        signup = client.post(
            "/v1/auth/signup", json={"email": email, "password": "correct horse 1"}
        )
        assert signup.status_code == 201, signup.text
        member = {"authorization": f"Bearer {signup.json()['data']['access_token']}"}
        member_id = signup.json()["data"]["user"]["id"]

        def remove() -> None:
            path = f"/v1/organizations/{DEFAULT_ORGANIZATION_ID}/members/{member_id}"
            response = client.delete(path)
            assert response.status_code in (200, 204), response.text

        path = f"/v1/events/stream?organization_id={DEFAULT_ORGANIZATION_ID}"
        text, took = _read_until_closed(client, path, member, remove)
        assert "event: reconnect" in text
        assert took < 10
        assert client.get(path, headers=member).status_code in (403, 404)


def test_the_first_event_after_a_revocation_is_not_delivered(
    database_url: str, tmp_path: Path
) -> None:
    # The periodic re-check is far away; the change made in this process ends the stream
    # before it sends anything written after it.
    settings = fast_settings(
        database_url, tmp_path, sse_recheck_seconds=600, sse_max_connection_seconds=20
    )
    with (
        LiveServer(settings) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        signup = client.post(
            "/v1/auth/signup", json={"email": "reader@example.com", "password": "correct horse 1"}
        )
        assert signup.status_code == 201, signup.text
        member = {"authorization": f"Bearer {signup.json()['data']['access_token']}"}
        member_id = signup.json()["data"]["user"]["id"]

        def remove_then_write() -> None:
            path = f"/v1/organizations/{DEFAULT_ORGANIZATION_ID}/members/{member_id}"
            assert client.delete(path).status_code in (200, 204)
            job = {"modality": "text", "input": {"prompt": "after the removal"}}
            assert client.post("/v1/jobs", json=job).status_code == 201

        path = f"/v1/events/stream?organization_id={DEFAULT_ORGANIZATION_ID}"
        text, took = _read_until_closed(client, path, member, remove_then_write)
        assert "event: reconnect" in text
        assert "job.created" not in text
        assert took < 10
