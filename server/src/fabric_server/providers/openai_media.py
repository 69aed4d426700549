"""Images and audio through the OpenAI API: the media operations of the `openai` provider.

* image → `POST {base}/images/generations` (dall-e-3, dall-e-2, gpt-image-1…): one image, as
  the https URL OpenAI answers with, or a `data:` URL built from its `b64_json`.
* audio from text (`input.text` or `prompt`) → `POST {base}/audio/speech` (tts-1, tts-1-hd,
  gpt-4o-mini-tts): the audio bytes come back as a `data:` URL.
* audio from audio (`input.audio_url`, a base64 `data:` URL) → `POST {base}/audio/transcriptions`
  as multipart/form-data (whisper-1, gpt-4o-transcribe, gpt-4o-mini-transcribe).

A model names the audio operation (speech models speak, transcription models listen); when a
request names none, its input does. Usage is reported in the unit each model is priced by
(see `pricing`): characters for speech, seconds of audio for whisper, tokens for gpt-4o
transcription; images are priced per image, by size and quality.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fabric_server.providers.base import (
    ProviderInputError,
    ProviderRequest,
    ProviderResult,
    approximate_tokens,
)
from fabric_server.providers.chat import allowed_params, usage_of
from fabric_server.providers.errors import UpstreamError
from fabric_server.providers.http import Multipart, Upstream, UpstreamClient
from fabric_server.providers.pricing import image_price_key

# OpenAI refuses uploads over 25 MB; refusing them here saves sending them.
MAX_AUDIO_BYTES = 25 * 1024 * 1024
_TEXT_KEYS = ("text", "prompt", "input", "query")
_AUDIO_KEYS = ("audio_url", "url")
_DALL_E_PARAMS = ("size", "quality", "style", "response_format", "user")
# gpt-image models always answer with b64_json and refuse `response_format`.
_GPT_IMAGE_PARAMS = (
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "user",
)
_SPEECH_PARAMS = ("response_format", "speed", "instructions")
_TRANSCRIPTION_PARAMS = ("language", "prompt", "temperature")
# Model names OpenAI uses, so a pinned model is recognised even when not listed.
_IMAGE_NAMES = re.compile(r"^(dall-e-|gpt-image-)")
_GPT_IMAGE_NAMES = re.compile(r"^gpt-image-")
_SPEECH_NAMES = re.compile(r"^tts-|-tts(-|$)")
_TRANSCRIPTION_NAMES = re.compile(r"^whisper-|-transcribe(-|$)")
# gpt-4o transcription models report token usage and answer only `json`; whisper (and the
# servers imitating it) answer `verbose_json`, which carries the audio's duration.
_TOKEN_TRANSCRIPTION_NAMES = re.compile(r"-transcribe(-|$)")
_IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_SPEECH_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
_AUDIO_EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mpga": "mpga",
    "audio/wav": "wav",
    "audio/wave": "wav",
    "audio/x-wav": "wav",
    "audio/vnd.wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/ogg": "ogg",
    "audio/webm": "webm",
    "video/webm": "webm",
    "audio/mp4": "m4a",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
    "video/mp4": "mp4",
    "video/mpeg": "mpeg",
}
# For estimates only: compressed audio of unknown bitrate is taken as 128 kbit/s; gpt-4o
# transcription reads about 10 audio tokens a second and writes about 3 text tokens.
_ASSUMED_BYTES_PER_SECOND = 16_000
_AUDIO_TOKENS_PER_SECOND = 10
_TEXT_TOKENS_PER_SECOND = 3


@dataclass(frozen=True)
class MediaModels:
    """The media models the provider offers, its defaults, and the default voice."""

    image: tuple[str, ...] = ("dall-e-3", "dall-e-2", "gpt-image-1")
    speech: tuple[str, ...] = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
    transcription: tuple[str, ...] = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
    default_image: str = "dall-e-3"
    default_speech: str = "tts-1"
    default_transcription: str = "whisper-1"
    voice: str = "alloy"

    def all(self) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(
                (
                    self.default_image,
                    *self.image,
                    self.default_speech,
                    *self.speech,
                    self.default_transcription,
                    *self.transcription,
                )
            )
        )

    def is_image(self, model: str) -> bool:
        return model in self.image or model == self.default_image or bool(_IMAGE_NAMES.match(model))

    def is_speech(self, model: str) -> bool:
        listed = model in self.speech or model == self.default_speech
        return listed or bool(_SPEECH_NAMES.search(model))

    def is_transcription(self, model: str) -> bool:
        listed = model in self.transcription or model == self.default_transcription
        return listed or bool(_TRANSCRIPTION_NAMES.search(model))

    def is_media(self, model: str) -> bool:
        return self.is_image(model) or self.is_speech(model) or self.is_transcription(model)

    def serves(self, model: str, modality: str) -> bool:
        if modality == "image":
            return self.is_image(model)
        if modality == "audio":
            return self.is_speech(model) or self.is_transcription(model)
        return False


class OpenAIMedia:
    """Runs image and audio requests for the `openai` provider (which resolves the endpoint
    and credentials and hands over the base URL and headers)."""

    def __init__(self, http: UpstreamClient, upstream: Upstream, models: MediaModels) -> None:
        self.http = http
        self.upstream = upstream
        self.models = models

    def default_model_for(self, request: ProviderRequest) -> str:
        if request.modality == "image":
            return self.models.default_image
        if _audio_source(request.input) is not None:
            return self.models.default_transcription
        return self.models.default_speech

    def price_key(self, request: ProviderRequest) -> str:
        model = request.model or self.default_model_for(request)
        if request.modality != "image":
            return model
        size, quality = request.params.get("size"), request.params.get("quality")
        return image_price_key(
            model,
            size if isinstance(size, str) else None,
            quality if isinstance(quality, str) else None,
        )

    def estimate(self, request: ProviderRequest) -> tuple[int, int]:
        """Likely (input, output) units: prompt tokens for an image, characters of speech,
        seconds (whisper) or tokens (gpt-4o) of audio to transcribe."""
        model = request.model or self.default_model_for(request)
        if request.modality == "image":
            return approximate_tokens(_text(request.input) or ""), 0
        if self._operation(model, request.input) == "speech":
            return len(_text(request.input) or ""), 0
        source = _audio_source(request.input)
        seconds = _estimated_seconds(source) if source else 0.0
        return _transcription_units(model, seconds)

    async def execute(
        self, request: ProviderRequest, model: str, base: str, headers: Mapping[str, str]
    ) -> ProviderResult:
        if request.modality == "image":
            return await self._image(request, model, base, headers)
        if self._operation(model, request.input) == "speech":
            return await self._speech(request, model, base, headers)
        return await self._transcription(request, model, base, headers)

    def _operation(self, model: str, data: Mapping[str, Any]) -> str:
        speaks, listens = self.models.is_speech(model), self.models.is_transcription(model)
        if speaks != listens:
            return "speech" if speaks else "transcription"
        return "transcription" if _audio_source(data) is not None else "speech"

    async def _image(
        self, request: ProviderRequest, model: str, base: str, headers: Mapping[str, str]
    ) -> ProviderResult:
        prompt = _text(request.input)
        if prompt is None:
            raise ProviderInputError("an image request needs input.prompt")
        gpt_image = bool(_GPT_IMAGE_NAMES.match(model))
        body: dict[str, Any] = {"model": model, "prompt": prompt, "n": 1}
        body.update(
            allowed_params(request.params, _GPT_IMAGE_PARAMS if gpt_image else _DALL_E_PARAMS)
        )
        reply = await self.http.post_json(
            self.upstream, f"{base}/images/generations", headers, body
        )
        try:
            item = reply["data"][0]
            encoded, url = item.get("b64_json"), item.get("url")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise self._unexpected() from exc
        if isinstance(encoded, str) and encoded:
            image_format = reply.get("output_format") or request.params.get("output_format")
            mime_type = _IMAGE_TYPES.get(str(image_format or "png"), "image/png")
            url = f"data:{mime_type};base64,{encoded}"
        elif isinstance(url, str) and url:
            mime_type = "image/png"  # DALL·E serves PNG files
        else:
            raise self._unexpected()
        output: dict[str, Any] = {"url": url, "mime_type": mime_type}
        if isinstance(item.get("revised_prompt"), str):
            output["revised_prompt"] = item["revised_prompt"]
        usage = usage_of(reply)
        return self._result(
            model,
            output,
            _count(usage, "input_tokens", approximate_tokens(prompt)),
            _count(usage, "output_tokens", 0),
        )

    async def _speech(
        self, request: ProviderRequest, model: str, base: str, headers: Mapping[str, str]
    ) -> ProviderResult:
        text = _text(request.input)
        if text is None:
            hint = (
                "; to transcribe input.audio_url, name a transcription model such as "
                f"{self.models.default_transcription}"
                if _audio_source(request.input)
                else ""
            )
            raise ProviderInputError(f"{model} turns input.text into speech{hint}")
        voice = request.params.get("voice") or self.models.voice
        body: dict[str, Any] = {"model": model, "input": text, "voice": voice}
        body.update(allowed_params(request.params, _SPEECH_PARAMS))
        reply = await self.http.post_for_bytes(
            self.upstream, f"{base}/audio/speech", {**headers, "Accept": "*/*"}, body
        )
        declared = (reply.content_type or "").split(";", 1)[0].strip().lower()
        audio_format = str(body.get("response_format", "mp3"))
        mime_type = (
            declared
            if declared.startswith("audio/")
            else _SPEECH_TYPES.get(audio_format, "application/octet-stream")
        )
        encoded = base64.b64encode(reply.content).decode()
        output = {"url": f"data:{mime_type};base64,{encoded}", "mime_type": mime_type}
        return self._result(model, output, len(text), 0)

    async def _transcription(
        self, request: ProviderRequest, model: str, base: str, headers: Mapping[str, str]
    ) -> ProviderResult:
        source = _audio_source(request.input)
        if source is None:
            raise ProviderInputError(
                f"{model} transcribes audio: give input.audio_url as a data: URL "
                "(data:audio/mpeg;base64,…)"
            )
        audio, mime_type = _decode_audio(source)
        by_tokens = bool(_TOKEN_TRANSCRIPTION_NAMES.search(model))
        params = dict(request.params)
        if "prompt" not in params and isinstance(request.input.get("prompt"), str):
            params["prompt"] = request.input["prompt"]
        fields = {"model": model, "response_format": "json" if by_tokens else "verbose_json"}
        fields.update({k: str(v) for k, v in allowed_params(params, _TRANSCRIPTION_PARAMS).items()})
        upload = Multipart(fields, {"file": (_filename(mime_type), audio, mime_type)})
        # httpx writes the multipart Content-Type (with its boundary) itself.
        plain = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        reply = await self.http.post_multipart(
            self.upstream, f"{base}/audio/transcriptions", plain, upload
        )
        text = reply.get("text")
        if not isinstance(text, str):
            raise self._unexpected()
        output: dict[str, Any] = {"text": text, "transcript": text}
        if isinstance(reply.get("language"), str):
            output["language"] = reply["language"]
        seconds = _reported_seconds(reply)
        if seconds is not None:
            output["duration_seconds"] = seconds
        usage = usage_of(reply)
        if usage.get("type") == "tokens":
            units = _count(usage, "input_tokens", 0), _count(usage, "output_tokens", 0)
        else:
            if seconds is None:
                seconds = _estimated_seconds(source)
            units = _transcription_units(model, seconds)
        return self._result(model, output, *units)

    def _result(
        self, model: str, output: dict[str, Any], units_in: int, units_out: int
    ) -> ProviderResult:
        output.update({"model": model, "provider": self.upstream.provider_id})
        return ProviderResult(
            provider_id=self.upstream.provider_id,
            model=model,
            output=output,
            input_tokens=units_in,
            output_tokens=units_out,
        )

    def _unexpected(self) -> UpstreamError:
        return UpstreamError(
            f"The {self.upstream.label} API answered in an unexpected shape.",
            provider_id=self.upstream.provider_id,
        )


def _text(data: Mapping[str, Any]) -> str | None:
    for key in _TEXT_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _audio_source(data: Mapping[str, Any]) -> str | None:
    for key in _AUDIO_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _split_data_url(source: str) -> tuple[str, str]:
    """The media type and base64 payload of a `data:…;base64,…` URL."""
    if not source.startswith("data:"):
        raise ProviderInputError(
            "input.audio_url must be a data: URL with base64 audio (data:audio/mpeg;base64,…); "
            "audio is not fetched from other URLs"
        )
    header, comma, payload = source[len("data:") :].partition(",")
    parts = [part.strip().lower() for part in header.split(";")]
    if not comma or "base64" not in parts[1:]:
        raise ProviderInputError("input.audio_url must be base64 encoded (data:…;base64,…)")
    return parts[0] or "application/octet-stream", payload


def _decode_audio(source: str) -> tuple[bytes, str]:
    mime_type, payload = _split_data_url(source)
    if not mime_type.startswith(("audio/", "video/")):
        raise ProviderInputError(f"input.audio_url holds {mime_type}, not audio")
    if _decoded_size(payload) > MAX_AUDIO_BYTES:
        raise ProviderInputError("input.audio_url holds more than 25 MB of audio")
    try:
        audio = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProviderInputError("input.audio_url is not valid base64") from exc
    if not audio:
        raise ProviderInputError("input.audio_url holds no audio")
    return audio, mime_type


def _decoded_size(payload: str) -> int:
    return len(payload.rstrip("=")) * 3 // 4


def _filename(mime_type: str) -> str:
    # OpenAI tells the audio format from the file name's extension.
    subtype = mime_type.split("/", 1)[-1]
    extension = _AUDIO_EXTENSIONS.get(mime_type) or re.sub(r"[^a-z0-9]", "", subtype) or "bin"
    return f"audio.{extension}"


def _estimated_seconds(source: str) -> float:
    """The audio's duration, exact for WAV (from its header), else guessed from its size."""
    try:
        mime_type, payload = _split_data_url(source)
        size = _decoded_size(payload)
        if "wav" in mime_type:
            header = base64.b64decode(payload[:64])
            if header[:4] == b"RIFF" and header[8:12] == b"WAVE":
                byte_rate = int(struct.unpack_from("<I", header, 28)[0])
                if byte_rate:
                    return max(0, size - 44) / byte_rate
    except (ProviderInputError, binascii.Error, ValueError, struct.error):
        return 0.0
    return size / _ASSUMED_BYTES_PER_SECOND


def _reported_seconds(reply: dict[str, Any]) -> float | None:
    """The duration OpenAI bills: `usage.seconds` (json), else `duration` (verbose_json)."""
    usage = usage_of(reply)
    candidates = (usage.get("seconds") if usage.get("type") == "duration" else None,)
    for value in (*candidates, reply.get("duration")):
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return None


def _transcription_units(model: str, seconds: float) -> tuple[int, int]:
    if _TOKEN_TRANSCRIPTION_NAMES.search(model):
        return (
            math.ceil(seconds * _AUDIO_TOKENS_PER_SECOND),
            math.ceil(seconds * _TEXT_TOKENS_PER_SECOND),
        )
    return math.ceil(seconds), 0


def _count(usage: Mapping[str, Any], key: str, fallback: int) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and value >= 0 else fallback
