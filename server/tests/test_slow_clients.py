"""Slow clients cannot hold connections: heads and bodies have deadlines, heads a size."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from fabric_server.slow_clients import protocol_class
from fabric_server.testing import LiveServer, fast_settings, free_port


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = fast_settings(
        database_url,
        tmp_path,
        http_header_timeout_seconds=0.5,
        http_body_idle_timeout_seconds=0.5,
        http_max_header_bytes=8192,
    )
    with LiveServer(settings) as live:
        yield live


def _connect(server: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.settimeout(10)
    return sock


def _closed_within(sock: socket.socket, seconds: float, dribble: bytes = b"") -> float:
    """Send `dribble` a byte at a time until the server closes; how long that took."""
    started = time.monotonic()
    sock.settimeout(0.1)
    position = 0
    while time.monotonic() - started < seconds:
        if position < len(dribble):
            try:
                sock.sendall(dribble[position : position + 1])
            except OSError:
                return time.monotonic() - started
            position += 1
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    raise AssertionError(f"the connection was still open after {seconds} s")


def _response(sock: socket.socket) -> bytes:
    """One whole response (head and a body of its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_a_head_sent_slowly_is_cut_off(server: LiveServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        # More bytes keep coming, but the head's deadline is not extended by them.
        took = _closed_within(sock, 5, dribble=b"X-Slow: " + b"a" * 200)
        assert took < 3


def test_a_connection_that_sends_nothing_is_closed(server: LiveServer) -> None:
    with _connect(server) as sock:
        assert _closed_within(sock, 5) < 3


def test_a_body_that_stops_arriving_is_cut_off(server: LiveServer) -> None:
    with _connect(server) as sock:
        sock.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"modality": '
        )
        assert _closed_within(sock, 5) < 3


def test_a_head_over_the_limit_is_refused(server: LiveServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 9000)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 431 ")


def test_prompt_clients_are_served_as_before(server: LiveServer) -> None:
    with _connect(server) as sock:
        for _ in range(2):  # two requests on one kept-alive connection
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _response(sock).startswith(b"HTTP/1.1 200 ")
    body = b'{"modality": "text", "input": {"prompt": "hi"}}'
    with _connect(server) as sock:
        sock.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10]
        )
        time.sleep(0.2)  # a short pause inside the body is fine
        sock.sendall(body[10:])
        assert _response(sock).startswith(b"HTTP/1.1 201 ")


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    """A plain ASGI app: reads the whole body, answers 200."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def test_the_h11_protocol_has_the_same_deadlines() -> None:
    port = free_port()
    protocol = protocol_class(
        head_seconds=0.5, body_idle_seconds=0.5, max_head_bytes=8192, use_h11=True
    )
    config = uvicorn.Config(
        _hello, host="127.0.0.1", port=port, http=protocol, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _response(sock).startswith(b"HTTP/1.1 200 ")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            assert _closed_within(sock, 5, dribble=b"X-Slow: " + b"a" * 200) < 3
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nab")
            assert _closed_within(sock, 5) < 3
    finally:
        server.should_exit = True
        thread.join(timeout=10)
