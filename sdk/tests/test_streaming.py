"""Event streams over a mock transport: delivery, terminal events, reconnection, errors."""

from __future__ import annotations

from typing import Callable

import httpx
import pytest

from fabric_platform import (
    EventStream,
    FabricClient,
    FabricClientClosedError,
    FabricConnectionError,
    FabricError,
    FabricNotFoundError,
    FabricServerError,
)

from .helpers import Script, fail, sse_frame, sse_response

MakeClient = Callable[..., FabricClient]

CREATED = sse_frame("job.created", "e-1", job_id="job-1", payload={})
STARTED = sse_frame("job.started", "e-2", job_id="job-1", payload={})
COMPLETED = sse_frame("job.completed", "e-3", job_id="job-1", payload={"output": "hi"})


def kinds(stream: EventStream) -> list[str]:
    return [event["kind"] for event in stream]


def test_yields_decoded_events_and_ends_after_the_terminal_one(make_client: MakeClient) -> None:
    script = Script(sse_response([b": ping\n\n", CREATED, STARTED + COMPLETED]))
    client = make_client(script)

    events = list(client.stream_job_events("job-1"))

    assert [e["kind"] for e in events] == ["job.created", "job.started", "job.completed"]
    assert events[2] == {
        "id": "e-3",
        "kind": "job.completed",
        "job_id": "job-1",
        "payload": {"output": "hi"},
    }
    assert len(script.requests) == 1


def test_stream_request(make_client: MakeClient) -> None:
    script = Script(sse_response([COMPLETED]))
    client = make_client(script, api_key="fab_k", timeout=5.0)

    list(client.stream_job_events("job-1"))

    request = script.last
    assert request.method == "GET"
    assert request.url.path == "/v1/jobs/job-1/events"
    assert request.url.query == b""
    assert request.headers["Accept"] == "text/event-stream"
    assert request.headers["Authorization"] == "Bearer fab_k"
    assert request.headers["Content-Type"] == "application/json"
    assert "Last-Event-ID" not in request.headers
    # Idle streams live on 15 s keep-alives: the read timeout must outlast them.
    assert request.extensions["timeout"]["read"] >= 60
    assert request.extensions["timeout"]["connect"] == 5.0


def test_include_internal(make_client: MakeClient) -> None:
    script = Script(sse_response([COMPLETED]))
    client = make_client(script)

    list(client.stream_job_events("job-1", include_internal=True))

    assert script.last.url.params["include_internal"] == "true"


def test_nothing_is_sent_before_iteration(make_client: MakeClient) -> None:
    script = Script(sse_response([COMPLETED]))
    client = make_client(script)

    client.stream_job_events("job-1")

    assert script.requests == []


def test_nothing_is_read_after_the_terminal_event(make_client: MakeClient) -> None:
    # Ending on the terminal event itself works even against a server that does not close.
    endless = sse_response([CREATED, COMPLETED], error=AssertionError("read past the end"))
    client = make_client(Script(endless))

    assert kinds(client.stream_job_events("job-1")) == ["job.created", "job.completed"]


def test_frames_with_empty_data_are_skipped(make_client: MakeClient) -> None:
    client = make_client(Script(sse_response([b"event: noop\ndata:\n\n", COMPLETED])))

    assert kinds(client.stream_job_events("job-1")) == ["job.completed"]


def test_kind_comes_from_the_event_line_when_data_lacks_it(make_client: MakeClient) -> None:
    frame = b'event: job.failed\nid: e-5\ndata: {"id":"e-5","payload":{}}\n\n'
    client = make_client(Script(sse_response([frame])))

    assert list(client.stream_job_events("job-1")) == [
        {"id": "e-5", "payload": {}, "kind": "job.failed"}
    ]


def test_reconnects_with_last_event_id_after_a_dropped_connection(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    script = Script(
        sse_response([CREATED, STARTED[:20]], error=httpx.ReadError("connection reset")),
        sse_response([STARTED, COMPLETED]),
    )
    client = make_client(script)

    assert kinds(client.stream_job_events("job-1")) == [
        "job.created",
        "job.started",
        "job.completed",
    ]
    assert len(script.requests) == 2
    assert "Last-Event-ID" not in script.requests[0].headers
    assert script.requests[1].headers["Last-Event-ID"] == "e-1"
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 0.5


def test_reconnects_when_the_server_closes_before_the_terminal_event(
    make_client: MakeClient,
) -> None:
    script = Script(sse_response([CREATED, STARTED]), sse_response([COMPLETED]))
    client = make_client(script)

    assert kinds(client.stream_job_events("job-1")) == [
        "job.created",
        "job.started",
        "job.completed",
    ]
    assert script.requests[1].headers["Last-Event-ID"] == "e-2"


def test_reconnect_frame_is_not_yielded_and_reconnects_at_once(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    script = Script(
        sse_response([CREATED, b"event: reconnect\ndata: {}\n\n"]),
        sse_response([COMPLETED]),
    )
    client = make_client(script)

    assert kinds(client.stream_job_events("job-1")) == ["job.created", "job.completed"]
    assert script.requests[1].headers["Last-Event-ID"] == "e-1"
    assert sleeps == []


def test_reconnect_frame_may_ask_for_a_delay(make_client: MakeClient, sleeps: list[float]) -> None:
    script = Script(
        sse_response([CREATED, b'event: reconnect\ndata: {"retry_ms": 1500}\n\n']),
        sse_response([COMPLETED]),
    )
    client = make_client(script)

    assert kinds(client.stream_job_events("job-1")) == ["job.created", "job.completed"]
    assert sleeps == [1.5]


def test_server_retry_field_is_a_floor_for_the_reconnect_delay(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    script = Script(sse_response([b"retry: 2000\n\n", CREATED]), sse_response([COMPLETED]))
    client = make_client(script)

    list(client.stream_job_events("job-1"))

    assert sleeps == [2.0]


def test_global_stream_reconnects_after_a_clean_close(make_client: MakeClient) -> None:
    script = Script(
        sse_response([sse_frame("workflow.run.completed", "e-1")]),
        sse_response([sse_frame("organization.created", "e-2")]),
    )
    client = make_client(script)

    stream = client._stream("/v1/events/stream")
    first, second = next(stream), next(stream)
    stream.close()

    assert (first["kind"], second["kind"]) == ("workflow.run.completed", "organization.created")
    assert script.requests[1].headers["Last-Event-ID"] == "e-1"
    assert list(stream) == []


def test_run_terminal_kinds_are_a_parameter(make_client: MakeClient) -> None:
    script = Script(
        sse_response(
            [sse_frame("workflow.run.started", "e-1"), sse_frame("workflow.run.cancelled", "e-2")]
        )
    )
    client = make_client(script)

    stream = client._stream(
        "/v1/workflow-runs/r/events", terminal_kinds=frozenset({"workflow.run.cancelled"})
    )

    assert kinds(stream) == ["workflow.run.started", "workflow.run.cancelled"]


def test_not_found_raises_the_typed_error(make_client: MakeClient, sleeps: list[float]) -> None:
    script = Script(fail(404, "not_found", "no such job", request_id="req_s"))
    client = make_client(script)

    with pytest.raises(FabricNotFoundError) as info:
        next(client.stream_job_events("nope"))

    assert info.value.code == "not_found"
    assert info.value.request_id == "req_s"
    assert len(script.requests) == 1
    assert sleeps == []


def test_unavailable_server_is_retried_on_connect(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    script = Script(
        fail(503, "unavailable", "starting", headers={"Retry-After": "2"}),
        httpx.ConnectError("refused"),
        sse_response([COMPLETED]),
    )
    client = make_client(script)

    assert kinds(client.stream_job_events("job-1")) == ["job.completed"]
    assert sleeps[0] == 2.0
    assert len(sleeps) == 2


def test_gives_up_after_consecutive_failures(make_client: MakeClient, sleeps: list[float]) -> None:
    cause = httpx.ConnectError("refused")
    script = Script(cause)
    client = make_client(script)

    stream = client._stream("/v1/jobs/job-1/events", max_failures=3)
    with pytest.raises(FabricConnectionError) as info:
        next(stream)

    assert info.value.__cause__ is cause
    assert len(script.requests) == 4
    assert len(sleeps) == 3


def test_gives_up_when_connections_keep_ending_without_events(make_client: MakeClient) -> None:
    script = Script(lambda request: sse_response([b": ping\n\n"]))
    client = make_client(script)

    stream = client._stream("/v1/events/stream", max_failures=2)
    with pytest.raises(FabricConnectionError, match="closing"):
        next(stream)

    assert len(script.requests) == 3


def test_gives_up_with_the_transport_error_when_reads_keep_failing(
    make_client: MakeClient,
) -> None:
    cause = httpx.ReadTimeout("silent")
    client = make_client(Script(lambda request: sse_response([], error=cause)))

    stream = client._stream("/v1/events/stream", max_failures=1)
    with pytest.raises(FabricConnectionError) as info:
        next(stream)

    assert info.value.__cause__ is cause


def test_failure_count_resets_after_a_successful_read(make_client: MakeClient) -> None:
    drop = httpx.ReadError("reset")
    script = Script(
        httpx.ConnectError("refused"),
        sse_response([CREATED], error=drop),
        httpx.ConnectError("refused"),
        sse_response([STARTED], error=drop),
        httpx.ConnectError("refused"),
        sse_response([COMPLETED]),
    )
    client = make_client(script)

    stream = client._stream(
        "/v1/jobs/job-1/events", terminal_kinds=frozenset({"job.completed"}), max_failures=1
    )

    assert kinds(stream) == ["job.created", "job.started", "job.completed"]
    assert [r.headers.get("Last-Event-ID") for r in script.requests] == [
        None,
        None,
        "e-1",
        "e-1",
        "e-2",
        "e-2",
    ]


def test_server_error_after_the_budget_is_raised(make_client: MakeClient) -> None:
    client = make_client(Script(fail(500, "internal_error", "boom")))

    with pytest.raises(FabricServerError):
        next(client._stream("/v1/events/stream", max_failures=1))


def test_non_json_data_raises_a_fabric_error(make_client: MakeClient) -> None:
    client = make_client(Script(sse_response([b"data: not json\n\n"])))

    with pytest.raises(FabricError, match="not JSON"):
        next(client.stream_job_events("job-1"))


def test_close_stops_the_stream(make_client: MakeClient) -> None:
    script = Script(sse_response([CREATED, STARTED, COMPLETED]))
    client = make_client(script)

    with client.stream_job_events("job-1") as stream:
        assert next(stream)["kind"] == "job.created"

    assert list(stream) == []
    assert len(script.requests) == 1


def test_stream_on_a_client_closed_meanwhile(make_client: MakeClient) -> None:
    script = Script(sse_response([CREATED]), sse_response([COMPLETED]))
    client = make_client(script)
    stream = client.stream_job_events("job-1")
    assert next(stream)["kind"] == "job.created"

    client.close()

    with pytest.raises(FabricClientClosedError):
        next(stream)
