"""Request and response models for organization secrets (values go in, never out)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field, SecretStr

from fabric_server.secrets.service import NAME_PATTERN


class SecretSet(BaseModel):
    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=128,
        description="Upper-case letters, digits and `_`, starting with a letter (≤ 128)",
    )
    value: SecretStr = Field(min_length=1, max_length=65536)


class SecretOut(BaseModel):
    name: str
    created_at: dt.datetime
    updated_at: dt.datetime
