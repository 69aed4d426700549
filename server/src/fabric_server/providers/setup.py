"""Building the provider registry from settings."""

from __future__ import annotations

from fabric_server.net.guard import AddressGuard
from fabric_server.providers.anthropic import AnthropicProvider
from fabric_server.providers.credentials import (
    CredentialResolver,
    CredentialSource,
    SettingsCredentials,
)
from fabric_server.providers.echo import EchoProvider
from fabric_server.providers.health import CircuitBreaker
from fabric_server.providers.http import UpstreamClient, origin_of
from fabric_server.providers.openai import OpenAIProvider
from fabric_server.providers.openai_media import MediaModels
from fabric_server.providers.pricing import PriceTable
from fabric_server.providers.registry import ProviderRegistry
from fabric_server.settings import Settings


def names(value: str) -> tuple[str, ...]:
    """A comma-separated setting as a tuple of names."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def trusted_origins(settings: Settings) -> frozenset[str]:
    """The endpoints the operator configured: called directly, private addresses included."""
    urls = (settings.openai_base_url, settings.openai_default_base_url, settings.anthropic_base_url)
    return frozenset(origin_of(url) for url in urls if url)


def build_registry(
    settings: Settings, org_secrets: CredentialSource | None = None
) -> ProviderRegistry:
    """echo, openai and anthropic; `org_secrets` is the organizations' secret store."""
    http = UpstreamClient(
        timeout=settings.provider_timeout_seconds,
        max_retries=settings.provider_max_retries,
        retry_base=settings.provider_retry_base_seconds,
        # Endpoints an organization chose are reached only through the address guard.
        guard=AddressGuard(allow_private=settings.allow_private_provider_urls),
        trusted_origins=trusted_origins(settings),
    )
    openai = OpenAIProvider(
        http,
        tier=settings.openai_tier,
        chat_models=names(settings.openai_models),
        embedding_models=names(settings.openai_embedding_models),
        default_chat_model=settings.openai_default_model,
        default_embedding_model=settings.openai_default_embedding_model,
        allow_private_urls=settings.allow_private_provider_urls,
        default_base_url=settings.openai_default_base_url,
        media=MediaModels(
            image=names(settings.openai_image_models),
            speech=names(settings.openai_speech_models),
            transcription=names(settings.openai_transcription_models),
            default_image=settings.openai_default_image_model,
            default_speech=settings.openai_default_speech_model,
            default_transcription=settings.openai_default_transcription_model,
            voice=settings.openai_default_voice,
        ),
    )
    anthropic = AnthropicProvider(
        http,
        base_url=settings.anthropic_base_url,
        version=settings.anthropic_version,
        models=names(settings.anthropic_models),
        default_model=settings.anthropic_default_model,
        max_tokens=settings.anthropic_max_tokens,
        allow_private_urls=settings.allow_private_provider_urls,
    )
    return ProviderRegistry(
        [EchoProvider(), openai, anthropic],
        prices=PriceTable(settings.model_prices),
        breaker=CircuitBreaker(
            settings.provider_circuit_failures, settings.provider_circuit_cooldown_seconds
        ),
        health_ttl=settings.provider_health_ttl_seconds,
        credentials=CredentialResolver(SettingsCredentials(settings), org_secrets),
        http=http,
    )
