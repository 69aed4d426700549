"""A loopback HTTP server speaking the OpenAI and Anthropic wire formats, for tests.

It records every request (path, headers, JSON body, or the fields of a multipart upload) and
answers from a script: each queued `Reply` is used once, in order; with nothing queued it
answers a well-formed success. A reply body of bytes is sent as is (generated audio). A
request with `"stream": true` is answered with Server-Sent Events in the API's own format
(or with the raw `Reply.frames` given, sent `frame_delay` seconds apart).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
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


@dataclass(frozen=True)
class Upload:
    """A file of a multipart request, as the fake received it."""

    filename: str | None
    content_type: str
    content: bytes


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
                Route("/v1/images/generations", self._images, methods=["POST"]),
                Route("/v1/audio/speech", self._speech, methods=["POST"]),
                Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
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
        body = await _read_body(request)
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
            return _response(default(body))
        content = reply.body if reply.body is not None else default(body)
        return _response(content, reply.status, reply.headers)

    async def _chat(self, request: Request) -> Response:
        return await self._answer(request, _chat_reply, _chat_stream)

    async def _embeddings(self, request: Request) -> Response:
        return await self._answer(request, _embedding_reply)

    async def _messages(self, request: Request) -> Response:
        return await self._answer(request, _message_reply, _message_stream)

    async def _models(self, request: Request) -> Response:
        return await self._answer(request, lambda _: {"object": "list", "data": []})

    async def _images(self, request: Request) -> Response:
        return await self._answer(request, _image_reply)

    async def _speech(self, request: Request) -> Response:
        return await self._answer(request, _speech_reply)

    async def _transcriptions(self, request: Request) -> Response:
        return await self._answer(request, _transcription_reply)


async def _read_body(request: Request) -> Any:
    if request.method != "POST":
        return None
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return await request.json()
    raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + await request.body()
    fields: dict[str, Any] = {}
    for part in BytesParser(policy=HTTP).parsebytes(raw).iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        filename = part.get_filename()
        if filename is None and part.get_content_type() == "text/plain":
            fields[str(name)] = payload.decode()
        else:
            fields[str(name)] = Upload(filename, part.get_content_type(), payload)
    return fields


def _response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(content, bytes):
        return Response(content, status_code=status, headers=headers, media_type="audio/mpeg")
    return JSONResponse(content, status_code=status, headers=headers)


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


FAKE_IMAGE = b"\x89PNG fake image"


def _image_reply(body: dict[str, Any]) -> dict[str, Any]:
    """gpt-image models answer with b64_json and token usage; DALL-E with a URL unless
    `response_format` asks for b64_json, and dall-e-3 rewrites the prompt."""
    item: dict[str, Any]
    if body["model"].startswith("gpt-image-") or body.get("response_format") == "b64_json":
        item = {"b64_json": base64.b64encode(FAKE_IMAGE).decode()}
    else:
        item = {"url": "https://images.example.test/generated/1.png"}
    if body["model"] == "dall-e-3":
        item["revised_prompt"] = f"revised: {body['prompt']}"
    reply: dict[str, Any] = {"created": 1700000000, "data": [item]}
    if body["model"].startswith("gpt-image-"):
        reply["usage"] = {
            "input_tokens": 9,
            "output_tokens": 1056,
            "total_tokens": 1065,
            "input_tokens_details": {"text_tokens": 9, "image_tokens": 0},
        }
    return reply


def _speech_reply(body: dict[str, Any]) -> bytes:
    return b"ID3 fake audio: " + body["input"].encode()


def _transcription_reply(fields: dict[str, Any]) -> dict[str, Any]:
    upload = fields["file"]
    text = f"heard {len(upload.content)} bytes of {upload.filename}"
    if fields.get("response_format") == "verbose_json":
        return {"task": "transcribe", "language": "english", "duration": 61.2, "text": text}
    return {
        "text": text,
        "usage": {"type": "tokens", "input_tokens": 120, "output_tokens": 14, "total_tokens": 134},
    }
