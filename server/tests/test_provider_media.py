"""Images and audio through the openai provider: the exact requests sent to a loopback fake
of the OpenAI API (JSON and multipart), the outputs, error mapping, pricing and routing."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fake_llm import FAKE_IMAGE, FakeLLM, Reply, Upload, openai_error
from server_helpers import assert_error
from sqlalchemy import select

from fabric_server.providers.base import Credentials, ProviderInputError, ProviderRequest
from fabric_server.providers.echo import EchoProvider
from fabric_server.providers.errors import (
    ProviderAuthFailed,
    ProviderRateLimited,
    ProviderRejected,
    UpstreamError,
    UpstreamTimeout,
)
from fabric_server.providers.http import UpstreamClient
from fabric_server.providers.openai import OpenAIProvider
from fabric_server.providers.openai_media import MediaModels
from fabric_server.providers.pricing import PriceTable, image_price_key
from fabric_server.providers.registry import ProviderRegistry
from fabric_server.services import Services
from fabric_server.settings import ModelPrice, Settings
from fabric_server.testing import fast_settings
from fabric_server.usage.models import UsageRecord

KEY = "sk-media-secret"


@pytest.fixture
async def http() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient(timeout=2.0, max_retries=2, retry_base=0.0)
    yield client
    await client.aclose()


def credentials(llm: FakeLLM) -> Credentials:
    return Credentials({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": llm.openai_base_url})


def image(prompt: str = "a red fox", model: str | None = None, **params: object) -> ProviderRequest:
    return ProviderRequest(modality="image", input={"prompt": prompt}, model=model, params=params)


def speech(
    text: str = "Hello there", model: str | None = None, **params: object
) -> ProviderRequest:
    return ProviderRequest(modality="audio", input={"text": text}, model=model, params=params)


def wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """Silence as 8-bit mono PCM WAV: `rate` bytes a second."""
    frames = b"\x80" * int(seconds * rate)
    header = b"RIFF" + struct.pack("<I", 36 + len(frames)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, rate, rate, 1, 8) + b"data"
    return header + struct.pack("<I", len(frames)) + frames


def data_url(content: bytes, mime_type: str = "audio/wav") -> str:
    return f"data:{mime_type};base64,{base64.b64encode(content).decode()}"


def transcription(source: str, model: str | None = None, **params: object) -> ProviderRequest:
    return ProviderRequest(
        modality="audio", input={"audio_url": source}, model=model, params=params
    )


# --- Images ---------------------------------------------------------------------------------


async def test_dall_e_3_request_and_url_answer(llm: FakeLLM, http: UpstreamClient) -> None:
    request = image(
        model="dall-e-3", size="1792x1024", quality="hd", style="vivid", n=4, delay_ms=5
    )

    result = await OpenAIProvider(http).execute(request, credentials(llm))

    (sent,) = llm.requests
    assert (sent.method, sent.path) == ("POST", "/v1/images/generations")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "model": "dall-e-3",
        "prompt": "a red fox",
        "n": 1,
        "size": "1792x1024",
        "quality": "hd",
        "style": "vivid",
    }
    assert result.output == {
        "url": "https://images.example.test/generated/1.png",
        "mime_type": "image/png",
        "revised_prompt": "revised: a red fox",
        "model": "dall-e-3",
        "provider": "openai",
    }
    assert (result.model, result.input_tokens, result.output_tokens) == ("dall-e-3", 3, 0)


async def test_b64_json_answer_becomes_a_data_url(llm: FakeLLM, http: UpstreamClient) -> None:
    request = image(model="dall-e-2", response_format="b64_json", size="512x512")

    result = await OpenAIProvider(http).execute(request, credentials(llm))

    assert llm.requests[0].body["response_format"] == "b64_json"
    url = result.output["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == FAKE_IMAGE
    assert "revised_prompt" not in result.output


async def test_gpt_image_gets_no_response_format(llm: FakeLLM, http: UpstreamClient) -> None:
    request = image(
        model="gpt-image-1", response_format="url", quality="high", output_format="webp"
    )

    result = await OpenAIProvider(http).execute(request, credentials(llm))

    assert llm.requests[0].body == {
        "model": "gpt-image-1",
        "prompt": "a red fox",
        "n": 1,
        "quality": "high",
        "output_format": "webp",
    }
    assert result.output["url"].startswith("data:image/webp;base64,")
    assert result.output["mime_type"] == "image/webp"
    assert (result.input_tokens, result.output_tokens) == (9, 1056)


async def test_image_without_a_model_uses_the_default(llm: FakeLLM, http: UpstreamClient) -> None:
    provider = OpenAIProvider(http, media=MediaModels(default_image="dall-e-2"))

    result = await provider.execute(image(), credentials(llm))

    assert llm.requests[0].body["model"] == "dall-e-2"
    assert result.model == "dall-e-2"


async def test_image_needs_a_prompt(llm: FakeLLM, http: UpstreamClient) -> None:
    request = ProviderRequest(modality="image", input={"url": "https://x.test/a.png"})
    with pytest.raises(ProviderInputError):
        await OpenAIProvider(http).execute(request, credentials(llm))
    assert llm.requests == []


async def test_garbled_image_answer_is_an_upstream_error(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    llm.queue(Reply(200, {"created": 1, "data": [{}]}))
    with pytest.raises(UpstreamError):
        await OpenAIProvider(http).execute(image(), credentials(llm))


# --- Text to speech -------------------------------------------------------------------------


async def test_speech_request_and_audio_answer(llm: FakeLLM, http: UpstreamClient) -> None:
    request = speech(model="tts-1-hd", voice="nova", speed=1.25, instructions="Cheerful")

    result = await OpenAIProvider(http).execute(request, credentials(llm))

    (sent,) = llm.requests
    assert (sent.method, sent.path) == ("POST", "/v1/audio/speech")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "model": "tts-1-hd",
        "input": "Hello there",
        "voice": "nova",
        "speed": 1.25,
        "instructions": "Cheerful",
    }
    url = result.output["url"]
    assert url.startswith("data:audio/mpeg;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == b"ID3 fake audio: Hello there"
    assert result.output["mime_type"] == "audio/mpeg"
    assert (result.output["model"], result.output["provider"]) == ("tts-1-hd", "openai")
    # Speech is priced per character: the input's length is reported as its input units.
    assert (result.input_tokens, result.output_tokens) == (11, 0)


async def test_speech_defaults_and_format(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(Reply(200, b"RIFF....WAVE", {"content-type": "application/octet-stream"}))
    provider = OpenAIProvider(http, media=MediaModels(voice="echo"))

    result = await provider.execute(speech(response_format="wav"), credentials(llm))

    assert llm.requests[0].body == {
        "model": "tts-1",
        "input": "Hello there",
        "voice": "echo",
        "response_format": "wav",
    }
    assert result.output["mime_type"] == "audio/wav"
    assert result.output["url"].startswith("data:audio/wav;base64,")


async def test_empty_speech_answer_is_an_upstream_error(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(Reply(200, b""))
    with pytest.raises(UpstreamError):
        await OpenAIProvider(http).execute(speech(), credentials(llm))


# --- Transcription --------------------------------------------------------------------------


async def test_whisper_transcription_is_a_multipart_upload(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    audio = wav(1.0)
    request = ProviderRequest(
        modality="audio",
        input={"audio_url": data_url(audio), "prompt": "Names: Fabric"},
        params={"language": "en", "temperature": 0, "voice": "ignored"},
    )

    result = await OpenAIProvider(http).execute(request, credentials(llm))

    (sent,) = llm.requests
    assert (sent.method, sent.path) == ("POST", "/v1/audio/transcriptions")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent.body == {
        "model": "whisper-1",
        "response_format": "verbose_json",
        "language": "en",
        "prompt": "Names: Fabric",
        "temperature": "0",
        "file": Upload("audio.wav", "audio/wav", audio),
    }
    assert result.output == {
        "text": f"heard {len(audio)} bytes of audio.wav",
        "transcript": f"heard {len(audio)} bytes of audio.wav",
        "language": "english",
        "duration_seconds": 61.2,
        "model": "whisper-1",
        "provider": "openai",
    }
    # whisper is priced per second of audio, rounded up.
    assert (result.input_tokens, result.output_tokens) == (62, 0)


async def test_gpt_4o_transcription_reports_tokens(llm: FakeLLM, http: UpstreamClient) -> None:
    request = transcription(data_url(b"ID3 some mp3", "audio/mpeg"), model="gpt-4o-transcribe")

    result = await OpenAIProvider(http).execute(request, credentials(llm))

    body = llm.requests[0].body
    assert body["response_format"] == "json"
    assert body["file"] == Upload("audio.mp3", "audio/mpeg", b"ID3 some mp3")
    assert result.output["transcript"] == "heard 12 bytes of audio.mp3"
    assert "duration_seconds" not in result.output
    assert (result.input_tokens, result.output_tokens) == (120, 14)


async def test_transcription_without_reported_duration_measures_the_wav(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    llm.queue(Reply(200, {"text": "hi"}))

    result = await OpenAIProvider(http).execute(transcription(data_url(wav(2.5))), credentials(llm))

    assert result.output == {
        "text": "hi",
        "transcript": "hi",
        "model": "whisper-1",
        "provider": "openai",
    }
    assert result.input_tokens == 3


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("https://example.com/talk.mp3", "data: URL"),
        ("data:audio/wav,plain", "base64"),
        ("data:audio/wav;base64,not base64!", "not valid base64"),
        ("data:image/png;base64,AAAA", "not audio"),
        ("data:audio/wav;base64,", "no audio"),
    ],
)
async def test_transcription_input_is_checked_before_calling(
    llm: FakeLLM, http: UpstreamClient, source: str, complaint: str
) -> None:
    with pytest.raises(ProviderInputError) as caught:
        await OpenAIProvider(http).execute(transcription(source), credentials(llm))

    assert complaint in str(caught.value)
    assert llm.requests == []


async def test_a_model_names_the_audio_operation(llm: FakeLLM, http: UpstreamClient) -> None:
    provider = OpenAIProvider(http)

    with pytest.raises(ProviderInputError) as speaking:
        await provider.execute(transcription(data_url(wav()), model="tts-1"), credentials(llm))
    assert "whisper-1" in str(speaking.value)
    with pytest.raises(ProviderInputError) as listening:
        await provider.execute(speech(model="whisper-1"), credentials(llm))
    assert "audio_url" in str(listening.value)
    assert llm.requests == []

    assert provider.default_model_for(speech()) == "tts-1"
    assert provider.default_model_for(transcription(data_url(wav()))) == "whisper-1"
    assert provider.default_model_for(image()) == "dall-e-3"
    assert provider.default_model("audio") == "tts-1"


def test_media_model_pinning() -> None:
    provider = OpenAIProvider(
        UpstreamClient(),
        media=MediaModels(image=("sdxl",), speech=("kokoro",), transcription=("parakeet",)),
    )
    assert provider.serves("dall-e-3", "image")
    assert provider.serves("gpt-image-1", "image")
    assert provider.serves("sdxl", "image")
    assert provider.serves("tts-1-hd", "audio")
    assert provider.serves("gpt-4o-mini-tts", "audio")
    assert provider.serves("gpt-4o-mini-transcribe", "audio")
    assert provider.serves("whisper-1", "audio")
    assert provider.serves("kokoro", "audio")
    assert provider.serves("parakeet", "audio")
    # Media models are not chat models, though their names start like one.
    assert not provider.serves("gpt-image-1", "text")
    assert not provider.serves("gpt-4o-mini-tts", "text")
    assert not provider.serves("gpt-4o-transcribe", "text")
    assert provider.serves("gpt-4o-mini", "text")
    assert not provider.serves("gpt-4o", "image")
    assert not provider.serves("dall-e-3", "audio")
    assert not provider.serves("whisper-1", "video")
    assert "sdxl" in provider.models()


# --- Upstream failures ----------------------------------------------------------------------


async def test_401_on_images_is_an_auth_failure(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(Reply(401, openai_error("Incorrect API key provided: sk-me***ret")))

    with pytest.raises(ProviderAuthFailed) as caught:
        await OpenAIProvider(http).execute(image(), credentials(llm))

    assert "OPENAI_API_KEY" in caught.value.message
    assert "sk-me" not in caught.value.message
    assert len(llm.requests) == 1


async def test_429_on_speech_carries_retry_after(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(Reply(429, openai_error("Rate limit reached"), {"Retry-After": "9"}))

    with pytest.raises(ProviderRateLimited) as caught:
        await OpenAIProvider(http).execute(speech(), credentials(llm))

    assert caught.value.retry_after == 9
    assert len(llm.requests) == 1


async def test_500_on_transcription_resends_the_upload(llm: FakeLLM, http: UpstreamClient) -> None:
    audio = wav(0.5)
    llm.queue(*[Reply(500, openai_error("boom", "server_error"))] * 3)

    with pytest.raises(UpstreamError) as caught:
        await OpenAIProvider(http).execute(transcription(data_url(audio)), credentials(llm))

    assert caught.value.details == {"provider_id": "openai", "upstream_status": 500}
    assert len(llm.requests) == 3
    assert all(r.body["file"].content == audio for r in llm.requests)


async def test_a_retried_speech_call_succeeds(llm: FakeLLM, http: UpstreamClient) -> None:
    llm.queue(Reply(503, openai_error("busy")))

    result = await OpenAIProvider(http).execute(speech("again"), credentials(llm))

    assert result.output["url"].endswith(base64.b64encode(b"ID3 fake audio: again").decode())
    assert len(llm.requests) == 2


async def test_slow_image_is_a_timeout_not_retried(llm: FakeLLM) -> None:
    llm.queue(Reply(delay=1.0))
    http = UpstreamClient(timeout=0.2, max_retries=2, retry_base=0.0)
    try:
        with pytest.raises(UpstreamTimeout):
            await OpenAIProvider(http).execute(image(), credentials(llm))
    finally:
        await http.aclose()
    assert len(llm.requests) == 1


async def test_rejected_speech_keeps_the_upstream_reason(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    llm.queue(Reply(400, openai_error("Input should be at most 4096 characters")))

    with pytest.raises(ProviderRejected) as caught:
        await OpenAIProvider(http).execute(speech(), credentials(llm))

    assert "4096 characters" in caught.value.message


# --- Prices ---------------------------------------------------------------------------------


def test_image_prices_by_size_and_quality() -> None:
    table = PriceTable()

    def per_image(model: str, size: str | None = None, quality: str | None = None) -> float:
        return table.cost(image_price_key(model, size, quality), 0, 0)

    assert per_image("dall-e-3") == 0.04
    assert per_image("dall-e-3", "1024x1024", "standard") == 0.04
    assert per_image("dall-e-3", None, "hd") == 0.08
    assert per_image("dall-e-3", "1024x1792") == 0.08
    assert per_image("dall-e-3", "1792x1024", "hd") == 0.12
    assert per_image("dall-e-2") == 0.02
    assert per_image("dall-e-2", "256x256") == 0.016
    assert per_image("gpt-image-1") == 0.042
    assert per_image("gpt-image-1", "auto", "auto") == 0.042
    assert per_image("gpt-image-1", "1024x1536", "high") == 0.25
    assert per_image("gpt-image-1", "1536x1024") == 0.063
    assert per_image("gpt-image-1-mini", "1024x1024", "low") == 0.005
    assert per_image("sdxl") == 0.0
    assert table.cost("dall-e-3", 1000, 0) == 0.04  # the prompt is not billed


def test_audio_prices_by_character_and_second() -> None:
    table = PriceTable()
    assert table.cost("tts-1", 1000, 0) == pytest.approx(0.015)
    assert table.cost("tts-1-hd", 1000, 0) == pytest.approx(0.03)
    assert table.cost("gpt-4o-mini-tts", 1000, 0) == pytest.approx(0.015)
    assert table.cost("whisper-1", 60, 0) == pytest.approx(0.006)
    assert table.cost("gpt-4o-transcribe", 1000, 100) == pytest.approx(0.007)
    assert table.cost("gpt-4o-mini-transcribe-2025-03-20", 1000, 0) == pytest.approx(0.003)
    assert table.price("tts-1") == ModelPrice(input=15.0, unit="characters")
    assert table.price("whisper-1") == ModelPrice(input=100.0, unit="seconds")


def test_price_overrides_keep_their_format_and_cover_variants() -> None:
    table = PriceTable(
        {
            "dall-e-3": ModelPrice(per_request=0.05),
            "dall-e-3:1792x1024:hd": ModelPrice(per_request=0.2),
            "whisper-1": ModelPrice(input=50.0),
            "llama3.2": ModelPrice(input=0.0, output=0.0),
        }
    )
    assert table.cost(image_price_key("dall-e-3", "1024x1792", "hd"), 0, 0) == 0.05
    assert table.cost(image_price_key("dall-e-3", None, None), 0, 0) == 0.05
    assert table.cost(image_price_key("dall-e-3", "1792x1024", "hd"), 0, 0) == 0.2
    assert table.cost(image_price_key("dall-e-2", "256x256", None), 0, 0) == 0.016
    assert table.price("whisper-1") == ModelPrice(input=50.0, unit="seconds")  # unit kept
    assert table.cost("whisper-1", 60, 0) == pytest.approx(0.003)


def test_model_prices_setting_accepts_old_and_new_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "FABRIC_MODEL_PRICES",
        '{"gpt-4o": {"input": 2.5, "output": 10}, "dall-e-3": {"per_request": 0.05}, '
        '"kokoro": {"input": 1, "unit": "characters"}}',
    )
    prices = Settings().model_prices
    assert prices["gpt-4o"] == ModelPrice(input=2.5, output=10.0)
    assert prices["dall-e-3"] == ModelPrice(per_request=0.05)
    assert prices["kokoro"].unit == "characters"


# --- Routing and pricing through the registry ----------------------------------------------


def registry(http: UpstreamClient) -> ProviderRegistry:
    return ProviderRegistry([EchoProvider(), OpenAIProvider(http)], prices=PriceTable())


async def test_routing_media_requests(llm: FakeLLM, http: UpstreamClient) -> None:
    providers = registry(http)
    keys = credentials(llm)

    # Free and offline first: echo, unless a model or the premium tier is asked for.
    assert providers.plan(image(), None, keys)[0].provider.id == "echo"
    (best, *_) = providers.plan(image(), "premium", keys)
    assert (best.provider.id, best.model, best.estimated_cost_usd) == ("openai", "dall-e-3", 0.04)
    wide = providers.estimate(image(model="dall-e-3", size="1792x1024", quality="hd"), None, keys)
    assert (wide["provider_id"], wide["estimated_cost_usd"]) == ("openai", 0.12)

    spoken = providers.estimate(speech("x" * 1000), "premium", keys)
    assert (spoken["model"], spoken["input_tokens_estimate"]) == ("tts-1", 1000)
    assert spoken["estimated_cost_usd"] == pytest.approx(0.015)
    heard = providers.estimate(transcription(data_url(wav(30.0))), "premium", keys)
    assert (heard["model"], heard["input_tokens_estimate"]) == ("whisper-1", 30)
    assert heard["estimated_cost_usd"] == pytest.approx(0.003)


async def test_executions_are_priced_per_image_character_and_second(
    llm: FakeLLM, http: UpstreamClient
) -> None:
    providers = registry(http)
    keys = credentials(llm)

    wide = await providers.execute(
        image(model="dall-e-3", size="1792x1024", quality="hd"), None, keys
    )
    assert wide.result.cost_usd == 0.12
    gpt_image = await providers.execute(image(model="gpt-image-1"), None, keys)
    assert gpt_image.result.cost_usd == 0.042
    spoken = await providers.execute(speech("x" * 200), "premium", keys)
    assert spoken.result.cost_usd == pytest.approx(200 * 15 / 1e6)
    heard = await providers.execute(transcription(data_url(wav())), "premium", keys)
    assert (heard.result.model, heard.result.input_tokens) == ("whisper-1", 62)
    assert heard.result.cost_usd == pytest.approx(62 * 0.0001)
    assert [r.path for r in llm.requests] == [
        "/v1/images/generations",
        "/v1/images/generations",
        "/v1/audio/speech",
        "/v1/audio/transcriptions",
    ]


def test_catalogue_prices_media_capabilities(http: UpstreamClient) -> None:
    (_, openai) = registry(http).catalogue(Credentials())
    assert openai["modalities"] == ["text", "image", "audio", "embedding"]
    assert openai["default_models"]["image"] == "dall-e-3"
    capabilities = {(c["modality"], c["model"]): c for c in openai["capabilities"]}

    dall_e = capabilities[("image", "dall-e-3")]
    assert (dall_e["estimated_cost_per_request"], dall_e["cost_per_request"]) == (0.04, 0.04)
    assert dall_e["default"] is True
    assert capabilities[("image", "gpt-image-1")]["estimated_cost_per_request"] == 0.042
    tts = capabilities[("audio", "tts-1")]
    assert (tts["price_unit"], tts["input_cost_per_million_tokens"]) == ("characters", 15.0)
    assert tts["estimated_cost_per_request"] == pytest.approx(0.015)  # 1,000 characters
    whisper = capabilities[("audio", "whisper-1")]
    assert whisper["price_unit"] == "seconds"
    assert whisper["estimated_cost_per_request"] == pytest.approx(0.006)  # one minute
    assert ("text", "gpt-image-1") not in capabilities
    assert ("image", "gpt-4o") not in capabilities


# --- Over the API ---------------------------------------------------------------------------


@pytest.fixture
def settings(database_url: str, tmp_path: Path, llm: FakeLLM) -> Settings:
    """OpenAI configured by the operator, pointing at the fake."""
    return fast_settings(
        database_url,
        tmp_path,
        openai_api_key="sk-server-key",
        openai_base_url=llm.openai_base_url,
        provider_timeout_seconds=2.0,
        provider_retry_base_seconds=0.0,
    )


async def test_execute_pinned_dall_e_3_records_the_image_price(
    client: httpx.AsyncClient, llm: FakeLLM, services: Services
) -> None:
    response = await client.post(
        "/v1/providers/execute",
        json={"modality": "image", "input": {"prompt": "a lighthouse"}, "model": "dall-e-3"},
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["provider_id"], data["model"], data["tier"]) == ("openai", "dall-e-3", "premium")
    assert data["output"]["url"] == "https://images.example.test/generated/1.png"
    assert data["output"]["revised_prompt"] == "revised: a lighthouse"
    assert data["usage"]["estimated_cost_usd"] == 0.04
    assert llm.requests[0].headers["authorization"] == "Bearer sk-server-key"
    async with services.db.read() as session:
        (row,) = (await session.scalars(select(UsageRecord))).all()
    assert (row.provider_id, row.model, row.modality) == ("openai", "dall-e-3", "image")
    assert row.cost_usd == pytest.approx(0.04)


async def test_transcription_over_the_api(client: httpx.AsyncClient, llm: FakeLLM) -> None:
    source = data_url(wav(1.0))
    heard = await client.post(
        "/v1/providers/execute",
        json={"modality": "audio", "input": {"audio_url": source}, "tier": "premium"},
    )
    assert heard.status_code == 200, heard.text
    data = heard.json()["data"]
    assert (data["model"], data["output"]["language"]) == ("whisper-1", "english")
    assert data["usage"] == {
        "input_tokens": 62,
        "output_tokens": 0,
        "estimated_cost_usd": pytest.approx(0.0062),
    }

    remote = await client.post(
        "/v1/providers/execute",
        json={
            "modality": "audio",
            "input": {"audio_url": "https://example.com/a.mp3"},
            "model": "whisper-1",
        },
    )
    body = assert_error(remote, 422, "validation_failed")
    assert "data: URL" in body["error"]["message"]
