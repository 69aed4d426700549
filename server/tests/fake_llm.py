"""A loopback HTTP server speaking the OpenAI and Anthropic wire formats, for tests.

It records every request (path, headers, JSON body) and answers from a script: each queued
`Reply` is used once, in order; with nothing queued it answers a well-formed success. A
request with `"stream": true` is answered with Server-Sent Events in the API's own format
(or with the raw `Reply.frames` given, sent `frame_delay` seconds apart).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fabric_server.testing import free_port


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    frames: tuple[str, ...] | None = None
    frame_delay: float = 0.0


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def openai_error(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def anthropic_error(message: str, kind: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


class FakeLLM:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    def start(self) -> FakeLLM:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake LLM server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._script.clear()

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def _answer(
        self,
        request: Request,
        default: Any,
        stream: Callable[[dict[str, Any]], list[str]] | None = None,
    ) -> Response:
        body = await request.json() if request.method == "POST" else None
        with self._lock:
            self.requests.append(
                Recorded(request.method, request.url.path, dict(request.headers), body)
            )
            reply = self._script.popleft() if self._script else None
        streaming = stream is not None and isinstance(body, dict) and body.get("stream") is True
        if reply is not None and reply.delay:
            await asyncio.sleep(reply.delay)
        if streaming and stream is not None and (reply is None or reply.status < 300):
            chunks = list(reply.frames) if reply and reply.frames is not None else stream(body)
            pause = reply.frame_delay if reply else 0.0
            return StreamingResponse(_paced(chunks, pause), media_type="text/event-stream")
        if reply is None:
            return JSONResponse(default(body))
        content = reply.body if reply.body is not None else default(body)
        return JSONResponse(content, status_code=reply.status, headers=reply.headers)

    async def _chat(self, request: Request) -> Response:
        return await self._answer(request, _chat_reply, _chat_stream)

    async def _embeddings(self, request: Request) -> Response:
        return await self._answer(request, _embedding_reply)

    async def _messages(self, request: Request) -> Response:
        return await self._answer(request, _message_reply, _message_stream)

    async def _models(self, request: Request) -> Response:
        return await self._answer(request, lambda _: {"object": "list", "data": []})


def _last_user_text(body: dict[str, Any]) -> str:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return str(users[-1]["content"]) if users else ""


def _chat_reply(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": f"{body['model']}-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"fake: {_last_user_text(body)}"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    }


def _embedding_reply(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -0.5, 0.75]}],
        "model": body["model"],
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }


def _message_reply(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": f"claude: {_last_user_text(body)}"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 4},
    }


async def _paced(chunks: list[str], pause: float) -> AsyncIterator[bytes]:
    for chunk in chunks:
        if pause:
            await asyncio.sleep(pause)
        yield chunk.encode()


def sse(data: Any, event: str | None = None) -> str:
    """One SSE frame carrying `data` (JSON unless already a string)."""
    text = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "") + f"data: {text}\n\n"


def pieces(text: str) -> list[str]:
    """`text` cut into the pieces the fake streams: words with their trailing space."""
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


def openai_chunk(content: str | None, finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "model": "gpt-fake-2024",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish_reason}],
    }


def _chat_stream(body: dict[str, Any]) -> list[str]:
    text = f"fake: {_last_user_text(body)}"
    frames = [sse(openai_chunk(None) | {"choices": [{"index": 0, "delta": {"role": "assistant"}}]})]
    frames += [sse(openai_chunk(piece)) for piece in pieces(text)]
    frames.append(sse(openai_chunk(None, "stop")))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
        frames.append(sse({"object": "chat.completion.chunk", "choices": [], "usage": usage}))
    return [*frames, sse("[DONE]")]


def anthropic_events(text: str, model: str = "claude-fake") -> list[str]:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "usage": {"input_tokens": 10, "output_tokens": 1},
        },
    }
    frames = [
        sse(start, "message_start"),
        sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
            "content_block_start",
        ),
        sse({"type": "ping"}, "ping"),
    ]
    for piece in pieces(text):
        delta = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": piece},
        }
        frames.append(sse(delta, "content_block_delta"))
    frames += [
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 4},
            },
            "message_delta",
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    return frames


def _message_stream(body: dict[str, Any]) -> list[str]:
    return anthropic_events(f"claude: {_last_user_text(body)}", body["model"])
