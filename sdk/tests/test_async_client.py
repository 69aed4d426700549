"""`AsyncFabricClient` twins of the key behaviours."""

from __future__ import annotations

from typing import Any, Callable

import httpx
import pytest

from fabric_platform import (
    AsyncFabricClient,
    FabricClientClosedError,
    FabricConnectionError,
    FabricNotFoundError,
    FabricServerError,
)

from .helpers import Script, fail, ok, sse_frame, sse_response

MakeClient = Callable[..., AsyncFabricClient]

CREATED = sse_frame("job.created", "e-1", payload={})
COMPLETED = sse_frame("job.completed", "e-2", payload={})


async def test_health_and_headers(make_async_client: MakeClient) -> None:
    script = Script(ok({"status": "ok", "version": "1"}))
    client = make_async_client(script, api_key="fab_k", principal_id="user-1")

    assert await client.health_check() == {"status": "ok", "version": "1"}
    headers = script.last.headers
    assert headers["Authorization"] == "Bearer fab_k"
    assert headers["X-Principal-Id"] == "user-1"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "fabric-platform/0.1.0"


async def test_environment_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABRIC_BASE_URL", "http://env.example/")
    monkeypatch.setenv("FABRIC_API_KEY", "fab_env")
    script = Script(ok({}))

    async with AsyncFabricClient(transport=httpx.MockTransport(script)) as client:
        await client.health_check()

    assert str(script.last.url) == "http://env.example/v1/health"
    assert script.last.headers["Authorization"] == "Bearer fab_env"


async def test_typed_error(make_async_client: MakeClient) -> None:
    client = make_async_client(Script(fail(404, "not_found", "no such job", request_id="req_a")))

    with pytest.raises(FabricNotFoundError) as info:
        await client.get_job("job-1")

    assert (info.value.code, info.value.message, info.value.request_id) == (
        "not_found",
        "no such job",
        "req_a",
    )


async def test_non_json_502(make_async_client: MakeClient) -> None:
    client = make_async_client(Script(httpx.Response(502, text="<html/>")), max_retries=0)

    with pytest.raises(FabricServerError, match="HTTP 502") as info:
        await client.health_check()

    assert info.value.code is None


async def test_retries_with_retry_after(make_async_client: MakeClient, sleeps: list[float]) -> None:
    script = Script(
        fail(503, "unavailable", "later", headers={"Retry-After": "4"}),
        httpx.ConnectError("refused"),
        ok({"status": "ok"}),
    )
    client = make_async_client(script)

    assert await client.health_check() == {"status": "ok"}
    assert len(script.requests) == 3
    assert sleeps[0] == 4.0
    assert len(sleeps) == 2


async def test_connection_error_is_wrapped(make_async_client: MakeClient) -> None:
    cause = httpx.ReadError("reset")
    client = make_async_client(Script(cause), max_retries=1)

    with pytest.raises(FabricConnectionError) as info:
        await client.health_check()

    assert info.value.__cause__ is cause


async def test_post_retries_only_with_idempotency_key(
    make_async_client: MakeClient, sleeps: list[float]
) -> None:
    without_key = Script(fail(503, "unavailable", "down"), ok({"id": "j"}, status=201))
    client = make_async_client(without_key)
    with pytest.raises(FabricServerError):
        await client.create_job(modality="text", input={"prompt": "hi"})
    assert len(without_key.requests) == 1

    with_key = Script(fail(503, "unavailable", "down"), ok({"id": "j"}, status=201))
    client = make_async_client(with_key)
    assert await client.create_job(modality="text", input={}, idempotency_key="k-1") == {"id": "j"}
    assert [r.headers["Idempotency-Key"] for r in with_key.requests] == ["k-1", "k-1"]
    assert with_key.requests[0].content == with_key.requests[1].content


async def test_closed_client(make_async_client: MakeClient) -> None:
    script = Script(ok({}))
    client = make_async_client(script)
    await client.close()

    with pytest.raises(FabricClientClosedError):
        await client.health_check()
    with pytest.raises(FabricClientClosedError):
        client.stream_job_events("job-1")
    assert script.requests == []


async def test_context_manager_closes() -> None:
    async with AsyncFabricClient(transport=httpx.MockTransport(Script(ok({})))) as client:
        await client.health_check()

    with pytest.raises(FabricClientClosedError):
        await client.get_job("job-1")


async def test_injected_http_client_is_left_open() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(Script(ok({"x": 1})))) as http:
        client = AsyncFabricClient(http_client=http)
        assert await client.get_job("job-1") == {"x": 1}
        await client.close()
        assert not http.is_closed


async def test_iter_jobs_pages(make_async_client: MakeClient) -> None:
    answers: dict[Any, Any] = {
        None: {"items": [{"id": "1"}, {"id": "2"}], "next_cursor": "c2"},
        "c2": {"items": [{"id": "3"}], "next_cursor": None},
    }
    script = Script(lambda request: ok(answers[request.url.params.get("cursor")]))
    client = make_async_client(script)

    ids = [job["id"] async for job in client.iter_jobs(page_size=2)]

    assert ids == ["1", "2", "3"]
    assert [r.url.params.get("cursor") for r in script.requests] == [None, "c2"]


async def test_list_jobs_and_usage(make_async_client: MakeClient) -> None:
    script = Script(ok({"items": [], "next_cursor": None}), ok({"job_id": "job-1"}))
    client = make_async_client(script)

    assert await client.list_jobs(limit=20, cursor="c") == {"items": [], "next_cursor": None}
    assert dict(script.last.url.params) == {"limit": "20", "cursor": "c"}
    assert await client.get_job_usage("job-1") == {"job_id": "job-1"}
    assert script.last.url.path == "/v1/jobs/job-1/usage"


async def test_stream_reconnects_with_last_event_id(make_async_client: MakeClient) -> None:
    script = Script(
        sse_response([b": ping\n\n", CREATED], error=httpx.RemoteProtocolError("peer closed")),
        sse_response([b"event: reconnect\ndata: {}\n\n"]),
        sse_response([COMPLETED]),
    )
    client = make_async_client(script)

    kinds = [event["kind"] async for event in client.stream_job_events("job-1")]

    assert kinds == ["job.created", "job.completed"]
    assert [r.headers.get("Last-Event-ID") for r in script.requests] == [None, "e-1", "e-1"]
    assert script.requests[0].headers["Accept"] == "text/event-stream"


async def test_stream_not_found_on_iteration(make_async_client: MakeClient) -> None:
    client = make_async_client(Script(fail(404, "not_found", "no such job")))

    with pytest.raises(FabricNotFoundError):
        async for _ in client.stream_job_events("nope"):
            pass


async def test_awaiting_the_stream_connects_at_once(make_async_client: MakeClient) -> None:
    missing = make_async_client(Script(fail(404, "not_found", "no such job")))
    with pytest.raises(FabricNotFoundError):
        await missing.stream_job_events("nope")

    script = Script(sse_response([CREATED, COMPLETED]))
    client = make_async_client(script)
    stream = await client.stream_job_events("job-1")
    assert len(script.requests) == 1
    assert [event["kind"] async for event in stream] == ["job.created", "job.completed"]


async def test_stream_close_releases_early(make_async_client: MakeClient) -> None:
    script = Script(sse_response([CREATED, COMPLETED]))
    client = make_async_client(script)

    async with client.stream_job_events("job-1") as stream:
        assert (await stream.__anext__())["kind"] == "job.created"

    assert [event async for event in stream] == []


async def test_stream_gives_up_after_consecutive_failures(
    make_async_client: MakeClient, sleeps: list[float]
) -> None:
    script = Script(httpx.ConnectError("refused"))
    client = make_async_client(script)

    with pytest.raises(FabricConnectionError):
        await client._stream("/v1/events/stream", max_failures=2).__anext__()

    assert len(script.requests) == 3
    assert len(sleeps) == 2
