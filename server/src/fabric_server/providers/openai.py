"""The `openai` provider: OpenAI's HTTP API, or any server that speaks it.

Text goes to `POST {base}/chat/completions` (streamed as SSE on request), embeddings to
`POST {base}/embeddings`, with `Authorization: Bearer <OPENAI_API_KEY>`. The base URL
(including `/v1`) comes from the organization's `OPENAI_BASE_URL` secret, else
`FABRIC_OPENAI_BASE_URL`, else OpenAI's own; a local server (vLLM, Ollama, llama.cpp,
LM Studio) needs no key, so a custom base URL alone makes the provider available. A
server-wide key is never sent to an organization's endpoint.

Images and audio go through the same endpoint and credentials; see `openai_media`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from fabric_server.providers.base import (
    NO_CREDENTIALS,
    Credentials,
    ProviderInputError,
    ProviderRequest,
    ProviderResult,
    StreamItem,
    TextDelta,
    approximate_tokens,
    estimate_remote_tokens,
    input_text,
)
from fabric_server.providers.chat import allowed_params, chat_messages, usage_of
from fabric_server.providers.errors import ProviderNotConfigured, UpstreamError
from fabric_server.providers.http import Upstream, UpstreamClient
from fabric_server.providers.openai_media import MediaModels, OpenAIMedia
from fabric_server.providers.sse_reader import frames
from fabric_server.providers.urlguard import check_public_url, check_url_syntax

DEFAULT_BASE_URL = "https://api.openai.com/v1"
KEY = "OPENAI_API_KEY"
BASE_URL = "OPENAI_BASE_URL"
_CHAT_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "user",
)
_EMBEDDING_PARAMS = ("dimensions", "user")
# Model names OpenAI uses, so a pinned model is recognised even when not listed.
_OPENAI_CHAT_NAMES = re.compile(r"^(gpt-|chatgpt-|o\d)")
_OPENAI_EMBEDDING_NAMES = re.compile(r"^text-embedding-")


class OpenAIProvider:
    id = "openai"
    name = "OpenAI (or an OpenAI-compatible server)"
    modalities = ("text", "image", "audio", "embedding")
    supports_streaming = True
    credential_names = (KEY, BASE_URL)

    def __init__(
        self,
        http: UpstreamClient,
        *,
        tier: str = "premium",
        chat_models: tuple[str, ...] = ("gpt-4o", "gpt-4o-mini"),
        embedding_models: tuple[str, ...] = ("text-embedding-3-small",),
        default_chat_model: str = "gpt-4o-mini",
        default_embedding_model: str = "text-embedding-3-small",
        allow_private_urls: bool = False,
        default_base_url: str = DEFAULT_BASE_URL,
        media: MediaModels | None = None,
    ) -> None:
        self.http = http
        self.tier = tier
        self._chat = tuple(dict.fromkeys((default_chat_model, *chat_models)))
        self._embedding = tuple(dict.fromkeys((default_embedding_model, *embedding_models)))
        self._defaults = {"text": default_chat_model, "embedding": default_embedding_model}
        self.allow_private_urls = allow_private_urls
        self.default_base_url = default_base_url.rstrip("/")
        self._upstream = Upstream(self.id, "OpenAI", KEY)
        self.media = OpenAIMedia(http, self._upstream, media or MediaModels())

    def models(self) -> tuple[str, ...]:
        return self._chat + self._embedding + self.media.models.all()

    def serves(self, model: str, modality: str) -> bool:
        if modality == "embedding":
            return model in self._embedding or bool(_OPENAI_EMBEDDING_NAMES.match(model))
        if modality == "text":
            named = _OPENAI_CHAT_NAMES.match(model) and not self.media.models.is_media(model)
            return model in self._chat or bool(named)
        return self.media.models.serves(model, modality)

    def default_model(self, modality: str) -> str:
        if modality == "image":
            return self.media.models.default_image
        if modality == "audio":
            return self.media.models.default_speech
        return self._defaults.get(modality, self._defaults["text"])

    def default_model_for(self, request: ProviderRequest) -> str:
        if request.modality in ("image", "audio"):
            return self.media.default_model_for(request)
        return self.default_model(request.modality)

    def price_key(self, request: ProviderRequest) -> str:
        if request.modality in ("image", "audio"):
            return self.media.price_key(request)
        return request.model or self.default_model(request.modality)

    def unavailable_reason(self, credentials: Credentials) -> str | None:
        unapproved = credentials.endpoint_unapproved(BASE_URL, KEY)
        if unapproved is not None:
            return unapproved
        if credentials.get(KEY) or credentials.get(BASE_URL):
            return None
        return f"set the {KEY} secret (or FABRIC_OPENAI_API_KEY on the server)"

    def endpoint(self, credentials: Credentials) -> str:
        return (credentials.get(BASE_URL) or self.default_base_url).rstrip("/")

    def estimate_tokens(self, request: ProviderRequest) -> tuple[int, int]:
        if request.modality in ("image", "audio"):
            return self.media.estimate(request)
        return estimate_remote_tokens(request)

    async def execute(
        self, request: ProviderRequest, credentials: Credentials = NO_CREDENTIALS
    ) -> ProviderResult:
        base, headers = await self._prepare(credentials)
        model = request.model or self.default_model_for(request)
        if request.modality in ("image", "audio"):
            return await self.media.execute(request, model, base, headers)
        if request.modality == "text":
            body = _chat_body(request, model)
            reply = await self.http.post_json(
                self._upstream, f"{base}/chat/completions", headers, body
            )
            return self._chat_result(model, reply, request)
        if request.modality == "embedding":
            text = input_text(request.input)
            if not text:
                raise ProviderInputError("an embedding request needs input.text (or prompt)")
            body = {"model": model, "input": text}
            body.update(allowed_params(request.params, _EMBEDDING_PARAMS))
            reply = await self.http.post_json(self._upstream, f"{base}/embeddings", headers, body)
            return self._embedding_result(model, reply, text)
        raise ProviderInputError(f"the openai provider does not do {request.modality}")

    async def stream(
        self, request: ProviderRequest, credentials: Credentials = NO_CREDENTIALS
    ) -> AsyncIterator[StreamItem]:
        if request.modality != "text":
            raise ProviderInputError(f"the openai provider does not stream {request.modality}")
        base, headers = await self._prepare(credentials)
        headers["Accept"] = "text/event-stream"
        model = request.model or self.default_model("text")
        body = {
            **_chat_body(request, model),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        parts: list[str] = []
        usage: dict[str, Any] = {}
        finish_reason = None
        answered_model = model
        url = f"{base}/chat/completions"
        async with self.http.stream_post(self._upstream, url, headers, body) as response:
            async for frame in frames(response, self._upstream):
                if frame.data.strip() == "[DONE]":
                    break
                chunk = frame.json(self._upstream)
                if isinstance(chunk.get("error"), dict):
                    message = chunk["error"].get("message") or "unknown error"
                    raise UpstreamError(
                        f"The OpenAI API failed while streaming: {message}", provider_id=self.id
                    )
                usage = usage_of(chunk) or usage
                answered_model = chunk.get("model") or answered_model
                delta, reason = _chunk_delta(chunk)
                finish_reason = reason or finish_reason
                if delta:
                    parts.append(delta)
                    yield TextDelta(delta)
        content = "".join(parts)
        yield ProviderResult(
            provider_id=self.id,
            model=model,
            output={
                "text": content,
                "content": content,
                "finish_reason": finish_reason,
                "model": answered_model,
                "provider": self.id,
            },
            input_tokens=_count(
                usage, "prompt_tokens", approximate_tokens(input_text(request.input))
            ),
            output_tokens=_count(usage, "completion_tokens", approximate_tokens(content)),
        )

    async def check_health(self, credentials: Credentials) -> None:
        base, headers = await self._prepare(credentials)
        await self.http.get(self._upstream, f"{base}/models", headers)

    async def _prepare(self, credentials: Credentials) -> tuple[str, dict[str, str]]:
        reason = self.unavailable_reason(credentials)
        if reason is not None:
            raise ProviderNotConfigured(f"OpenAI is not configured: {reason}.", provider_id=self.id)
        chosen_by_org = credentials.is_organization_value(BASE_URL)
        base = check_url_syntax(self.endpoint(credentials), BASE_URL)
        if chosen_by_org and not self.allow_private_urls:
            check_public_url(base, BASE_URL)
        key = credentials.get(KEY)
        if chosen_by_org and not credentials.is_organization_value(KEY):
            key = None  # the server's own key only ever goes to the server's endpoint
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return base, headers

    def _chat_result(
        self, model: str, reply: dict[str, Any], request: ProviderRequest
    ) -> ProviderResult:
        try:
            choice = reply["choices"][0]
            content = choice["message"].get("content") or ""
            finish_reason = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise _unexpected() from exc
        if not isinstance(content, str):
            raise _unexpected()
        usage = usage_of(reply)
        tokens_in = _count(usage, "prompt_tokens", approximate_tokens(input_text(request.input)))
        tokens_out = _count(usage, "completion_tokens", approximate_tokens(content))
        return ProviderResult(
            provider_id=self.id,
            model=model,
            output={
                "text": content,
                "content": content,
                "finish_reason": finish_reason,
                "model": reply.get("model", model),
                "provider": self.id,
            },
            input_tokens=tokens_in,
            output_tokens=tokens_out,
        )

    def _embedding_result(self, model: str, reply: dict[str, Any], text: str) -> ProviderResult:
        try:
            vector = reply["data"][0]["embedding"]
        except (KeyError, IndexError, TypeError) as exc:
            raise _unexpected() from exc
        if not isinstance(vector, list):
            raise _unexpected()
        usage = usage_of(reply)
        return ProviderResult(
            provider_id=self.id,
            model=model,
            output={
                "embedding": vector,
                "dimensions": len(vector),
                "model": reply.get("model", model),
                "provider": self.id,
            },
            input_tokens=_count(usage, "prompt_tokens", approximate_tokens(text)),
            output_tokens=0,
        )


def _chat_body(request: ProviderRequest, model: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": chat_messages(request),
        **allowed_params(request.params, _CHAT_PARAMS),
    }


def _chunk_delta(chunk: dict[str, Any]) -> tuple[str, str | None]:
    """The text and finish reason of one `chat.completion.chunk` (the usage-only last
    chunk has no choices)."""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "", None
    choice = choices[0]
    delta = choice.get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    reason = choice.get("finish_reason")
    return (content if isinstance(content, str) else ""), (
        reason if isinstance(reason, str) else None
    )


def _count(usage: dict[str, Any], key: str, fallback: int) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and value >= 0 else fallback


def _unexpected() -> UpstreamError:
    return UpstreamError("The OpenAI API answered in an unexpected shape.", provider_id="openai")
