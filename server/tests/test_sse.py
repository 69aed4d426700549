"""Job event streams over a real HTTP server: replay, live, resume, keep-alive, lifetime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from fabric_server.testing import LiveServer, fast_settings


def parse_frames(text: str) -> list[dict[str, Any]]:
    frames = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {"comments": []}
        for line in block.splitlines():
            if line.startswith(":"):
                fields["comments"].append(line[1:].strip())
            elif ": " in line:
                name, value = line.split(": ", 1)
                fields[name] = value
        if len(fields) > 1 or fields["comments"]:
            frames.append(fields)
    return frames


def submit(base_url: str, **body: Any) -> dict[str, Any]:
    payload = {"modality": "text", "input": {"prompt": "hello"}, **body}
    response = httpx.post(f"{base_url}/v1/jobs", json=payload)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def read_stream(base_url: str, job_id: str, headers: dict[str, str] | None = None) -> str:
    """Read until the server closes the stream (the test timeout guards a hang)."""
    with httpx.stream(
        "GET", f"{base_url}/v1/jobs/{job_id}/events", headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return "".join(response.iter_text())


def events_of(text: str) -> list[dict[str, Any]]:
    return [f for f in parse_frames(text) if "data" in f and f.get("event") != "reconnect"]


def test_live_stream_follows_a_job_and_closes_after_the_terminal_event(
    live_server: LiveServer,
) -> None:
    job = submit(live_server.base_url, params={"delay_ms": 300})
    frames = events_of(read_stream(live_server.base_url, job["id"]))
    kinds = [f["event"] for f in frames]
    assert kinds == ["job.created", "job.started", "job.completed"]
    for frame in frames:
        event = json.loads(frame["data"])
        assert event["id"] == frame["id"]
        assert event["kind"] == frame["event"]
        assert event["job_id"] == job["id"]
    completed = json.loads(frames[-1]["data"])
    assert completed["payload"]["output"]["text"] == "hello"


def test_finished_job_replays_its_history(live_server: LiveServer) -> None:
    job = submit(live_server.base_url)
    first = events_of(read_stream(live_server.base_url, job["id"]))
    again = events_of(read_stream(live_server.base_url, job["id"]))
    assert [f["id"] for f in first] == [f["id"] for f in again]


def test_last_event_id_resumes_after_that_event(live_server: LiveServer) -> None:
    job = submit(live_server.base_url)
    frames = events_of(read_stream(live_server.base_url, job["id"]))
    resumed = events_of(
        read_stream(live_server.base_url, job["id"], headers={"Last-Event-ID": frames[0]["id"]})
    )
    assert [f["id"] for f in resumed] == [f["id"] for f in frames[1:]]


def test_idle_stream_sends_keepalive_comments(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path, sse_keepalive_seconds=0.1)
    with LiveServer(settings) as server:
        # The global stream is live-only: with nothing happening, only keep-alives arrive.
        seen: list[str] = []
        url = f"{server.base_url}/v1/events/stream"
        with httpx.stream("GET", url, timeout=30) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                seen.append(line)
                if line == ": ping":
                    break
    comments = [c for f in parse_frames("\n".join(seen) + "\n\n") for c in f["comments"]]
    assert "ping" in comments


def test_connection_lifetime_ends_with_a_reconnect_frame(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path, sse_max_connection_seconds=0.3)
    with LiveServer(settings) as server:
        job = submit(server.base_url, params={"delay_ms": 1500})
        seen: list[dict[str, Any]] = []
        connections = 0
        while not seen or seen[-1]["event"] != "job.completed":
            assert connections < 100, "the stream never reached the terminal event"
            headers = {"Last-Event-ID": seen[-1]["id"]} if seen else None
            text = read_stream(server.base_url, job["id"], headers=headers)
            connections += 1
            frames = parse_frames(text)
            seen += events_of(text)
            if seen[-1]["event"] != "job.completed":
                assert frames[-1]["event"] == "reconnect"
    # Reconnecting with the last id picks up exactly where each connection ended.
    assert connections > 1
    assert [f["event"] for f in seen] == ["job.created", "job.started", "job.completed"]
    assert len({f["id"] for f in seen}) == 3


def test_stopping_the_server_ends_open_streams_with_a_reconnect_frame(
    database_url: str, tmp_path: Path
) -> None:
    # No workers: the job stays pending, so only the server's ending can close its stream.
    with LiveServer(fast_settings(database_url, tmp_path, run_workers=False)) as server:
        url = f"{server.base_url}/v1/jobs/{submit(server.base_url)['id']}/events"
        with httpx.stream("GET", url) as stream:
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            server.stop()
            rest = "\n".join(lines) + "\n\n"
    assert [frame.get("event") for frame in parse_frames(rest)] == ["job.created", "reconnect"]
