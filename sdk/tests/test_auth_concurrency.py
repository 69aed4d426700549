"""Single-flight refresh: many callers meeting one expired session cause exactly one refresh,
and the async client behaves as the sync one.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import httpx
import pytest

from fabric_platform import AsyncFabricClient, FabricAuthError, FabricClient

from .fake_auth import FakeAuthServer
from .test_auth import Clock

CALLERS = 20


def sync_client(server: FakeAuthServer) -> FabricClient:
    client = FabricClient(transport=httpx.MockTransport(server))
    client._clock = Clock()
    client.login("ada@example.com", "s3cret!Pass")
    return client


def call_together(client: FabricClient) -> list[object]:
    barrier = threading.Barrier(CALLERS)

    def call(index: int) -> object:
        barrier.wait(timeout=10)
        return client.get_job(f"job-{index}")

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        return list(pool.map(call, range(CALLERS)))


def test_threads_meeting_an_expiring_token_refresh_it_once() -> None:
    server = FakeAuthServer(expires_in=3600, refresh_delay=0.05)
    with sync_client(server) as client:
        client._clock.now += 3600

        results = call_together(client)

    assert results == [{"id": f"job-{i}"} for i in range(CALLERS)]
    assert len(server.refresh_calls()) == 1
    assert server.resource_bearers() == ["Bearer access-2"] * CALLERS


def test_threads_rejected_with_401_refresh_once() -> None:
    server = FakeAuthServer(refresh_delay=0.05)
    with sync_client(server) as client:
        server.expire_access_tokens()

        results = call_together(client)

    assert results == [{"id": f"job-{i}"} for i in range(CALLERS)]
    assert len(server.refresh_calls()) == 1
    assert server.resource_bearers().count("Bearer access-2") == CALLERS
    assert client.access_token == "access-2"


def test_threads_share_a_rejected_refresh() -> None:
    server = FakeAuthServer(refresh_delay=0.05)
    with sync_client(server) as client:
        server.expire_access_tokens()
        server.revoke_refresh_tokens()

        with pytest.raises(FabricAuthError):
            call_together(client)

    assert len(server.refresh_calls()) == 1
    assert client.access_token is None


MakeAsyncClient = Callable[..., AsyncFabricClient]


async def async_client(
    make_async_client: MakeAsyncClient, server: FakeAuthServer, **kwargs: object
) -> AsyncFabricClient:
    client = make_async_client(server.handle_async, **kwargs)
    client._clock = Clock()
    await client.login("ada@example.com", "s3cret!Pass")
    return client


async def test_tasks_meeting_an_expiring_token_refresh_it_once(
    make_async_client: MakeAsyncClient,
) -> None:
    server = FakeAuthServer(expires_in=3600, refresh_delay=0.01)
    client = await async_client(make_async_client, server)
    client._clock.now += 3600

    results = await asyncio.gather(*(client.get_job(f"job-{i}") for i in range(CALLERS)))

    assert results == [{"id": f"job-{i}"} for i in range(CALLERS)]
    assert len(server.refresh_calls()) == 1
    assert server.resource_bearers() == ["Bearer access-2"] * CALLERS


async def test_tasks_rejected_with_401_refresh_once(make_async_client: MakeAsyncClient) -> None:
    server = FakeAuthServer(refresh_delay=0.01)
    client = await async_client(make_async_client, server)
    server.expire_access_tokens()

    results = await asyncio.gather(*(client.get_job(f"job-{i}") for i in range(CALLERS)))

    assert results == [{"id": f"job-{i}"} for i in range(CALLERS)]
    assert len(server.refresh_calls()) == 1
    assert client.access_token == "access-2"


async def test_async_rejected_refresh_ends_the_session(make_async_client: MakeAsyncClient) -> None:
    server = FakeAuthServer()
    client = await async_client(make_async_client, server, api_key="fab_key")
    server.expire_access_tokens()
    server.revoke_refresh_tokens()

    with pytest.raises(FabricAuthError, match="access token expired"):
        await client.get_job("job-1")

    assert client.access_token is None
    assert len(server.refresh_calls()) == 1


async def test_async_replay_is_tried_once(make_async_client: MakeAsyncClient) -> None:
    server = FakeAuthServer()
    client = await async_client(make_async_client, server)
    server.issue = lambda status=200: httpx.Response(
        200, json={"data": {"access_token": "also-bad", "refresh_token": "r"}}
    )
    server.expire_access_tokens()

    with pytest.raises(FabricAuthError):
        await client.get_job("job-1")

    assert server.paths()[1:] == ["/v1/jobs/job-1", "/v1/auth/token/refresh", "/v1/jobs/job-1"]


async def test_async_accounts_round_trip(make_async_client: MakeAsyncClient) -> None:
    server = FakeAuthServer()
    client = await async_client(make_async_client, server, api_key="fab_key")

    await client.get_job("job-1")
    assert (await client.refresh_token())["access_token"] == "access-2"
    await client.logout()
    assert client.social_login_url("github") == "http://localhost:3001/v1/auth/social/github"
    await client.reset_password("recovery-tok", "new!Pass2")

    paths = server.paths()
    assert paths == [
        "/v1/auth/login",
        "/v1/jobs/job-1",
        "/v1/auth/token/refresh",
        "/v1/auth/logout",
        "/v1/auth/reset-password",
    ]
    assert server.resource_bearers() == ["Bearer access-1"]
    assert json.loads(server.requests[3].content) == {"access_token": "access-2"}
    assert json.loads(server.requests[4].content) == {
        "access_token": "recovery-tok",
        "new_password": "new!Pass2",
    }
    assert client.access_token is None


async def test_async_stream_refreshes_on_401(make_async_client: MakeAsyncClient) -> None:
    server = FakeAuthServer()
    client = await async_client(make_async_client, server)
    server.expire_access_tokens()

    kinds = [event["kind"] async for event in client.stream_run_events("run-1")]

    assert kinds == ["workflow.run.completed"]
    assert server.resource_bearers() == ["Bearer access-1", "Bearer access-2"]
