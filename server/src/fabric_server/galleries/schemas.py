"""Request and response models for galleries (the OpenAPI comes from these)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
# Kinds and tags as sent: case does not matter (they are stored in lower case).
NAME_INPUT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
# The sources an item may point at: an absolute http(s) URL, or a data: URL.
URL_PATTERN = r"^(?:[Hh][Tt][Tt][Pp][Ss]?://[^/?#]+|[Dd][Aa][Tt][Aa]:)"
MAX_TAGS = 32


def normalize_name(value: str, what: str) -> str:
    """Kinds and tags are lower-case words: letters, digits, `_ . : -`, up to 64 long."""
    name = value.lower()
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"{what} must be 1-64 characters: letters, digits, '_', '.', ':' or '-' "
            "(starting with a letter or digit)"
        )
    return name


class GalleryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organization_id: str | None = Field(
        default=None,
        max_length=64,
        description="Omitted: the caller's organization. null: a public gallery, visible to "
        "everyone (platform administrators only).",
    )
    kind: str = Field(
        pattern=NAME_INPUT_PATTERN,
        max_length=64,
        description="e.g. portrait, persona, style: letters, digits, `_ . : -` (stored in "
        "lower case)",
    )
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, Any] | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        return normalize_name(value, "kind")


class GalleryOut(BaseModel):
    id: str
    organization_id: str | None
    kind: str
    name: str
    description: str | None
    metadata: dict[str, Any] | None
    public: bool
    item_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


class GalleryItemCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "description": "Exactly one of `url` and `asset_id`.",
            "oneOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("url", "asset_id")
            ],
        },
    )

    url: str | None = Field(
        default=None,
        max_length=200_000,
        pattern=URL_PATTERN,
        description="http(s) URL or a data: URL",
    )
    asset_id: str | None = Field(default=None, min_length=1, max_length=200)
    title: str | None = Field(default=None, max_length=300)
    tags: list[Annotated[str, Field(pattern=NAME_INPUT_PATTERN, max_length=64)]] = Field(
        default_factory=list, max_length=MAX_TAGS
    )
    metadata: dict[str, Any] | None = None

    @field_validator("tags")
    @classmethod
    def _tags(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(normalize_name(v, "a tag") for v in values))

    @model_validator(mode="after")
    def _exactly_one_source(self) -> GalleryItemCreate:
        if (self.url is None) == (self.asset_id is None):
            raise ValueError("give exactly one of url and asset_id")
        return self


class GalleryItemOut(BaseModel):
    id: str
    gallery_id: str
    url: str | None
    asset_id: str | None
    title: str | None
    tags: list[str]
    metadata: dict[str, Any] | None
    created_at: dt.datetime


class DeletedOut(BaseModel):
    id: str
    deleted: bool
