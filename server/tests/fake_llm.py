"""A loopback HTTP server speaking the OpenAI and Anthropic wire formats, for tests.

It records every request (path, headers, JSON body) and answers from a script: each queued
`Reply` is used once, in order; with nothing queued it answers a well-formed success.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from fabric_server.testing import free_port


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


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

    async def _answer(self, request: Request, default: Any) -> JSONResponse:
        body = await request.json() if request.method == "POST" else None
        with self._lock:
            self.requests.append(
                Recorded(request.method, request.url.path, dict(request.headers), body)
            )
            reply = self._script.popleft() if self._script else None
        if reply is None:
            return JSONResponse(default(body))
        if reply.delay:
            await asyncio.sleep(reply.delay)
        content = reply.body if reply.body is not None else default(body)
        return JSONResponse(content, status_code=reply.status, headers=reply.headers)

    async def _chat(self, request: Request) -> JSONResponse:
        return await self._answer(request, _chat_reply)

    async def _embeddings(self, request: Request) -> JSONResponse:
        return await self._answer(request, _embedding_reply)

    async def _messages(self, request: Request) -> JSONResponse:
        return await self._answer(request, _message_reply)

    async def _models(self, request: Request) -> JSONResponse:
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
