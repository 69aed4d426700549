"""Fixtures: clients on a mock transport that record, instead of doing, their sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable

import httpx
import pytest

from fabric_platform import AsyncFabricClient, FabricClient

from .helpers import Handler


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own FABRIC_* settings must not leak into the unit tests.
    monkeypatch.delenv("FABRIC_BASE_URL", raising=False)
    monkeypatch.delenv("FABRIC_API_KEY", raising=False)
    monkeypatch.delenv("FABRIC_ORGANIZATION_ID", raising=False)


@pytest.fixture
def sleeps() -> list[float]:
    """The delays the client asked to sleep, in order (nothing really sleeps)."""
    return []


@pytest.fixture
def make_client(sleeps: list[float]) -> Iterator[Callable[..., FabricClient]]:
    clients: list[FabricClient] = []

    def make(handler: Handler, **kwargs: Any) -> FabricClient:
        client = FabricClient(transport=httpx.MockTransport(handler), **kwargs)
        client._sleep = sleeps.append
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
async def make_async_client(
    sleeps: list[float],
) -> AsyncIterator[Callable[..., AsyncFabricClient]]:
    clients: list[AsyncFabricClient] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    def make(handler: Handler, **kwargs: Any) -> AsyncFabricClient:
        client = AsyncFabricClient(transport=httpx.MockTransport(handler), **kwargs)
        client._sleep = record
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
