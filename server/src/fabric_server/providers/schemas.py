"""Request and response models for the provider routes (the OpenAPI comes from these)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fabric_server.documented import Documented
from fabric_server.providers.base import INPUT_SCHEMA

Modality = Literal["text", "image", "audio", "video", "embedding"]
Tier = Literal["basic", "premium"]
ProviderInput = Annotated[dict[str, Any], Documented(INPUT_SCHEMA)]


class ProviderCapabilityOut(BaseModel):
    modality: str
    model: str
    supports_streaming: bool
    estimated_cost_per_request: float = Field(
        description="USD for a reference request: 1,000 input and 500 output tokens (text), "
        "1,000 input tokens (embedding, transcription by tokens), one image at the default "
        "size and quality, 1,000 characters of speech, or one minute of audio (whisper)"
    )
    input_cost_per_million_tokens: float = Field(
        description="USD per million input units (see price_unit)"
    )
    output_cost_per_million_tokens: float = Field(
        description="USD per million output units (see price_unit)"
    )
    cost_per_request: float = Field(
        default=0.0, description="USD charged once per call (per image for image models)"
    )
    price_unit: Literal["tokens", "characters", "seconds"] = Field(
        default="tokens",
        description="What the per-million prices count (and what usage reports as tokens)",
    )
    default: bool = Field(description="The model used when a request names none")


class ProviderOut(BaseModel):
    id: str
    provider_id: str
    name: str
    tier: str
    healthy: bool = Field(description="False while the endpoint's circuit breaker is open")
    health_detail: str | None
    available: bool = Field(description="The organization has what the provider needs")
    reason: str | None = Field(description="What to set when the provider is not available")
    modalities: list[str]
    supports_streaming: bool
    models: list[str]
    default_models: dict[str, str]
    capabilities: list[ProviderCapabilityOut]


class ExecuteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    modality: Modality
    input: ProviderInput
    model: str | None = Field(default=None, max_length=200, description="Pins the provider")
    params: dict[str, Any] | None = None
    tier: Tier | None = None
    organization_id: str | None = Field(
        default=None, max_length=64, description="Defaults to the caller's organization"
    )


class EstimateBody(ExecuteBody):
    pass


class UsageOut(BaseModel):
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float


class FailedAttemptOut(BaseModel):
    provider_id: str | None
    code: str
    message: str


class ExecutionOut(BaseModel):
    provider_id: str
    model: str
    modality: str
    tier: str
    output: dict[str, Any]
    usage: UsageOut
    latency_ms: int
    failed_attempts: list[FailedAttemptOut] = Field(
        description="Providers tried first that failed (routing fell back past them)"
    )


class EstimateOut(BaseModel):
    provider_id: str
    model: str
    modality: str
    tier: str
    input_tokens_estimate: int
    output_tokens_estimate: int
    estimated_cost_usd: float
    currency: Literal["USD"]
    available: bool = Field(description="Whether the organization could run it now")
