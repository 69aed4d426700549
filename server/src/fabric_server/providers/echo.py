"""The `echo` provider: offline and deterministic, for tests and local development.

It never calls a model. Every output says so (`"provider": "echo"`), and the same input
always produces the same output, so tests and demos can assert on it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import struct
from collections.abc import AsyncIterator
from typing import Any

from fabric_server.providers.base import (
    MODALITIES,
    NO_CREDENTIALS,
    Credentials,
    ProviderInputError,
    ProviderRequest,
    ProviderResult,
    StreamItem,
    TextDelta,
)

EMBEDDING_DIMENSIONS = 16
_MAX_DELAY_MS = 60_000


class EchoProvider:
    id = "echo"
    name = "Echo (offline test provider)"
    tier = "basic"
    modalities = MODALITIES
    supports_streaming = True
    credential_names: tuple[str, ...] = ()

    def models(self) -> tuple[str, ...]:
        return ("echo-1",)

    def serves(self, model: str, modality: str) -> bool:
        return model == "echo-1"

    def default_model(self, modality: str) -> str:
        return "echo-1"

    def unavailable_reason(self, credentials: Credentials) -> str | None:
        return None

    def endpoint(self, credentials: Credentials) -> str:
        return "local"

    def estimate_tokens(self, request: ProviderRequest) -> tuple[int, int]:
        try:
            tokens = _count_tokens(_input_text(request.input))
        except ProviderInputError:
            tokens = 0
        return tokens, tokens if request.modality == "text" else 0

    async def check_health(self, credentials: Credentials) -> None:
        return None

    async def execute(
        self, request: ProviderRequest, credentials: Credentials = NO_CREDENTIALS
    ) -> ProviderResult:
        delay_ms = _delay_ms(request)
        if delay_ms:
            # Simulated latency, so clients can watch a job run.
            await asyncio.sleep(delay_ms / 1000)
        return self._answer(request)

    async def stream(
        self, request: ProviderRequest, credentials: Credentials = NO_CREDENTIALS
    ) -> AsyncIterator[StreamItem]:
        """The echoed text a word at a time; `params.delay_ms` is spread over the words."""
        result = self._answer(request)
        words = re.findall(r"\s*\S+\s*", str(result.output.get("text", ""))) or [""]
        pause = _delay_ms(request) / 1000 / len(words)
        for word in words:
            if pause:
                await asyncio.sleep(pause)
            if word:
                yield TextDelta(word)
        yield result

    def _answer(self, request: ProviderRequest) -> ProviderResult:
        if request.params.get("fail"):
            raise ProviderInputError(str(request.params.get("fail")))
        text = _input_text(request.input)
        output = _OUTPUTS[request.modality](text)
        output["provider"] = "echo"
        tokens_in = _count_tokens(text)
        tokens_out = _count_tokens(str(output.get("text", "")))
        return ProviderResult(
            provider_id=self.id,
            model=request.model or "echo-1",
            output=output,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
        )


def _delay_ms(request: ProviderRequest) -> float:
    delay_ms = request.params.get("delay_ms", 0)
    if not isinstance(delay_ms, int | float) or not 0 <= delay_ms <= _MAX_DELAY_MS:
        raise ProviderInputError(f"params.delay_ms must be between 0 and {_MAX_DELAY_MS}")
    return float(delay_ms)


def _input_text(data: dict[str, Any]) -> str:
    for key in ("prompt", "text", "input", "query", "url", "image_url", "audio_url", "video_url"):
        value = data.get(key)
        if isinstance(value, str):
            return value
    if "messages" in data and isinstance(data["messages"], list):
        parts = [str(m.get("content", "")) for m in data["messages"] if isinstance(m, dict)]
        return "\n".join(parts)
    raise ProviderInputError("input needs a `prompt` (or `text`, `input`, `messages`) string")


def _count_tokens(text: str) -> int:
    return len(text.split())


def _text(prompt: str) -> dict[str, Any]:
    return {"text": prompt, "content": prompt, "finish_reason": "stop"}


def _embedding(prompt: str) -> dict[str, Any]:
    digest = hashlib.sha256(prompt.encode()).digest()
    raw = [b / 255.0 - 0.5 for b in digest[:EMBEDDING_DIMENSIONS]]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return {"embedding": [round(v / norm, 6) for v in raw], "dimensions": EMBEDDING_DIMENSIONS}


def _image(prompt: str) -> dict[str, Any]:
    color = hashlib.sha256(prompt.encode()).hexdigest()[:6]
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        f'<rect width="64" height="64" fill="#{color}"/></svg>'
    )
    data_url = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    return {
        "url": data_url,
        "mime_type": "image/svg+xml",
        "note": "echo provider: a solid placeholder colour derived from the prompt",
    }


def _audio(prompt: str) -> dict[str, Any]:
    # 0.1 s of silence as 8 kHz mono 8-bit PCM WAV.
    frames = b"\x80" * 800
    header = b"RIFF" + struct.pack("<I", 36 + len(frames)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000, 1, 8) + b"data"
    header += struct.pack("<I", len(frames))
    data_url = "data:audio/wav;base64," + base64.b64encode(header + frames).decode()
    return {
        "url": data_url,
        "mime_type": "audio/wav",
        "transcript": prompt,
        "note": "echo provider: 0.1 s of silence; the transcript echoes the input",
    }


def _video(prompt: str) -> dict[str, Any]:
    return {
        "url": None,
        "mime_type": None,
        "description": prompt,
        "note": "echo provider: no video is rendered; the description echoes the input",
    }


_OUTPUTS = {
    "text": _text,
    "embedding": _embedding,
    "image": _image,
    "audio": _audio,
    "video": _video,
}
