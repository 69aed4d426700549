"""A real HTTP receiver for webhook deliveries: a loopback server in a thread that records
every request and answers as the test scripts it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from fabric_platform.webhooks import verify_signature
from fabric_server.testing import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value

    def verified(self, secret: str) -> bool:
        """Both signatures check out, with the SDK's own helper."""
        plain = verify_signature(
            self.body,
            self.headers["x-fabric-signature"],
            secret,
            timestamp=self.headers["x-fabric-timestamp"],
        )
        stamped = verify_signature(self.body, self.headers["x-fabric-signature-256"], secret)
        return plain and stamped


# status, extra headers, body
Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Receiver:
    """`answer` decides the response to each request (default 200 `ok`)."""

    port: int = field(default_factory=free_port)
    answer: Callable[[Received], Answer] = lambda _: (200, {}, b"ok")
    requests: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                received = Received(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
                receiver.requests.append(received)
                status, headers, body = receiver.answer(received)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def events(self) -> list[dict[str, Any]]:
        return [r.event for r in self.requests]

    def deduplicated(self) -> dict[str, Received]:
        """What a receiver de-duplicating on `X-Fabric-Delivery` keeps: one per delivery."""
        kept: dict[str, Received] = {}
        for request in self.requests:
            kept.setdefault(request.headers["x-fabric-delivery"], request)
        return kept
