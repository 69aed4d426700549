"""Caps on the event streams open at once, per principal and per organization."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import httpx
from server_helpers import assert_error

from fabric_server.testing import LiveServer, fast_settings


def _open(stack: contextlib.ExitStack, client: httpx.Client, path: str) -> httpx.Response:
    response = stack.enter_context(client.stream("GET", path))
    if response.status_code != 200:
        response.read()
    return response


def test_streams_per_principal_are_capped_and_released_when_one_closes(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(
        database_url, tmp_path, sse_max_streams_per_principal=3, sse_max_streams_per_organization=0
    )
    with (
        LiveServer(settings) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
        contextlib.ExitStack() as stack,
    ):
        job = client.post("/v1/jobs", json={"modality": "text", "input": {"prompt": "hi"}})
        job_id = job.json()["data"]["id"]
        first = stack.enter_context(client.stream("GET", "/v1/events/stream"))
        assert first.status_code == 200
        assert _open(stack, client, "/v1/events/stream").status_code == 200
        assert _open(stack, client, "/v1/events/stream").status_code == 200
        for path in ("/v1/events/stream", f"/v1/jobs/{job_id}/events"):
            refused = _open(stack, client, path)
            body = assert_error(refused, 429, "rate_limited")
            assert body["error"]["details"] == {"limit": 3, "scope": "principal"}
            assert refused.headers["retry-after"]
        # Someone else is not affected.
        other = {"X-Principal-Id": "00000000-0000-0000-0000-00000000abcd"}
        with client.stream("GET", "/v1/events/stream", headers=other) as theirs:
            assert theirs.status_code == 200
        first.close()
        deadline = time.monotonic() + 10
        while True:
            with client.stream("GET", "/v1/events/stream") as again:
                if again.status_code == 200:
                    break
                again.read()
                assert time.monotonic() < deadline, "the closed stream was never released"
            time.sleep(0.05)


def test_streams_per_organization_are_capped(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(
        database_url, tmp_path, sse_max_streams_per_principal=0, sse_max_streams_per_organization=2
    )
    with (
        LiveServer(settings) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
        contextlib.ExitStack() as stack,
    ):
        job = client.post("/v1/jobs", json={"modality": "text", "input": {"prompt": "hi"}})
        job_id = job.json()["data"]["id"]
        assert _open(stack, client, "/v1/events/stream").status_code == 200
        assert _open(stack, client, "/v1/events/stream").status_code == 200
        refused = _open(stack, client, f"/v1/jobs/{job_id}/events")
        body = assert_error(refused, 429, "rate_limited")
        assert body["error"]["details"] == {"limit": 2, "scope": "organization"}
