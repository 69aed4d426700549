"""Small helpers shared by the server tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 15.0
) -> T:
    """Poll `probe` until `check` accepts its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.02)


async def wait_for_job(client: httpx.AsyncClient, job_id: str, *statuses: str) -> dict[str, Any]:
    wanted = statuses or ("completed", "failed")

    async def probe() -> dict[str, Any]:
        response = await client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    return await eventually(probe, lambda job: job["status"] in wanted)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The wire error envelope, with the given status and code."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["data"] is None
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["meta"] == {"status": status, "request_id": response.headers["x-request-id"]}
    return body
