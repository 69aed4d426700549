"""Which failures are retried, how often, after how long, and with which idempotency key."""

from __future__ import annotations

import json
from typing import Callable

import httpx
import pytest

from fabric_platform import (
    FabricClient,
    FabricConnectionError,
    FabricNotFoundError,
    FabricRateLimitError,
    FabricServerError,
)

from .helpers import Script, fail, ok

MakeClient = Callable[..., FabricClient]
HEALTH = ok({"status": "ok", "version": "1"})


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(
    make_client: MakeClient, sleeps: list[float], status: int
) -> None:
    script = Script(fail(status, "x", "transient"), HEALTH)
    client = make_client(script)

    assert client.health_check() == {"status": "ok", "version": "1"}

    assert len(script.requests) == 2
    assert len(sleeps) == 1


def test_retry_after_is_honoured(make_client: MakeClient, sleeps: list[float]) -> None:
    script = Script(
        fail(503, "unavailable", "later", headers={"Retry-After": "3"}),
        fail(429, "rate_limited", "later", headers={"Retry-After": "7"}),
        HEALTH,
    )
    client = make_client(script)

    client.health_check()

    assert sleeps == [3.0, 7.0]


def test_retry_after_beyond_the_cap_is_not_waited_for(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    script = Script(fail(429, "rate_limited", "locked", headers={"Retry-After": "900"}), HEALTH)
    client = make_client(script)

    with pytest.raises(FabricRateLimitError) as info:
        client.health_check()

    assert info.value.retry_after == 900.0
    assert sleeps == []
    assert len(script.requests) == 1


def test_backoff_is_exponential_with_full_jitter(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    script = Script(fail(500, "internal_error", "boom"))
    client = make_client(script, max_retries=6)
    client._retry.rng = lambda: 1.0  # the top of each jitter window

    with pytest.raises(FabricServerError):
        client.health_check()

    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_jitter_stays_inside_its_window(make_client: MakeClient, sleeps: list[float]) -> None:
    client = make_client(Script(fail(500, "internal_error", "boom")), max_retries=4)

    with pytest.raises(FabricServerError):
        client.health_check()

    assert all(0 <= delay <= 0.5 * 2**attempt for attempt, delay in enumerate(sleeps))


def test_max_retries_is_respected(make_client: MakeClient, sleeps: list[float]) -> None:
    script = Script(fail(503, "unavailable", "down"))
    client = make_client(script, max_retries=3)

    with pytest.raises(FabricServerError) as info:
        client.health_check()

    assert info.value.message == "down"
    assert len(script.requests) == 4
    assert len(sleeps) == 3


def test_zero_retries(make_client: MakeClient, sleeps: list[float]) -> None:
    script = Script(fail(503, "unavailable", "down"))
    client = make_client(script, max_retries=0)

    with pytest.raises(FabricServerError):
        client.health_check()

    assert len(script.requests) == 1
    assert sleeps == []


def test_client_errors_are_not_retried(make_client: MakeClient, sleeps: list[float]) -> None:
    script = Script(fail(404, "not_found", "no such job"))
    client = make_client(script)

    with pytest.raises(FabricNotFoundError):
        client.get_job("job-1")

    assert len(script.requests) == 1
    assert sleeps == []


def test_connection_errors_are_retried(make_client: MakeClient, sleeps: list[float]) -> None:
    script = Script(httpx.ReadError("reset"), httpx.ReadTimeout("slow"), HEALTH)
    client = make_client(script)

    assert client.health_check() == {"status": "ok", "version": "1"}
    assert len(script.requests) == 3
    assert len(sleeps) == 2


def test_connection_error_after_the_last_retry_is_raised(make_client: MakeClient) -> None:
    cause = httpx.ReadError("reset")
    client = make_client(Script(cause))

    with pytest.raises(FabricConnectionError) as info:
        client.health_check()

    assert info.value.__cause__ is cause


def test_post_without_idempotency_key_is_not_retried(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    script = Script(fail(503, "unavailable", "down"), ok({"id": "job-1"}, status=201))
    client = make_client(script)

    with pytest.raises(FabricServerError):
        client.create_job(modality="text", input={"prompt": "hi"})

    assert len(script.requests) == 1
    assert sleeps == []


def test_post_without_idempotency_key_is_not_retried_after_a_read_error(
    make_client: MakeClient,
) -> None:
    script = Script(httpx.ReadError("reset"), ok({"id": "job-1"}, status=201))
    client = make_client(script)

    with pytest.raises(FabricConnectionError):
        client.create_job(modality="text", input={"prompt": "hi"})

    assert len(script.requests) == 1


def test_post_is_retried_when_nothing_was_sent(make_client: MakeClient) -> None:
    # A refused connection means the request never left: resending cannot duplicate it.
    script = Script(httpx.ConnectError("refused"), ok({"id": "job-1"}, status=201))
    client = make_client(script)

    assert client.create_job(modality="text", input={"prompt": "hi"}) == {"id": "job-1"}
    assert len(script.requests) == 2


def test_post_with_idempotency_key_is_retried_with_the_same_key(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    script = Script(
        fail(503, "unavailable", "down"),
        httpx.ReadError("reset"),
        ok({"id": "job-1"}, status=201),
    )
    client = make_client(script)

    job = client.create_job(
        modality="text", input={"prompt": "hi"}, idempotency_key="unique-key-123"
    )

    assert job == {"id": "job-1"}
    assert len(script.requests) == 3
    assert len(sleeps) == 2
    assert [r.headers["Idempotency-Key"] for r in script.requests] == ["unique-key-123"] * 3
    assert [json.loads(r.content)["idempotency_key"] for r in script.requests] == [
        "unique-key-123"
    ] * 3
    assert len({r.content for r in script.requests}) == 1
