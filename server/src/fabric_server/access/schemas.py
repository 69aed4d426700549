"""Request and response models for authorization checks, grants, API keys and `/v1/me`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fabric_server.access.policy import ACTION_ALIASES, ALL_ACTIONS, ROLE_ACTIONS
from fabric_server.bodies import RequestBody
from fabric_server.documented import Documented

Action = Annotated[
    str, Field(min_length=1, max_length=64, description="`<resource>.<verb>`, or `*`")
]
# An action a grant or an API key scope may name: a known one, an alias of one, or `*`.
KNOWN_ACTIONS = sorted({*ROLE_ACTIONS["owner"], *ACTION_ALIASES, ALL_ACTIONS})
KnownAction = Annotated[
    str,
    Documented(
        {"type": "string", "enum": KNOWN_ACTIONS, "description": "An action (docs/rbac.md)"}
    ),
]
Id = Annotated[str, Field(min_length=1, max_length=255)]


class AuthzCheck(BaseModel):
    """One question. The resource is given as `resource_type` + `resource_id`, or as
    `resource: "type:id"`; without one, the check is about the organization itself
    (`organization_id`, else the caller's organization)."""

    action: Action
    resource_type: str | None = Field(default=None, min_length=1, max_length=64)
    resource_id: Id | None = None
    resource: str | None = Field(default=None, min_length=1, max_length=320)
    organization_id: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _split_resource(self) -> AuthzCheck:
        if self.resource is not None and self.resource_type is None:
            kind, _, ident = self.resource.partition(":")
            self.resource_type = kind or None
            self.resource_id = ident or None
        return self


class AuthzResult(BaseModel):
    action: str
    resource_type: str | None
    resource_id: str | None
    organization_id: str | None
    allowed: bool
    reason: str = Field(description="Why: role, grant, or the refusal (docs/rbac.md)")
    role: str | None


class AuthzBatch(BaseModel):
    checks: list[AuthzCheck] = Field(max_length=100)


class GrantCreate(BaseModel):
    principal_id: str = Field(min_length=1, max_length=36)
    organization_id: str = Field(max_length=64)
    action: KnownAction
    effect: Literal["allow", "deny"] = "allow"
    team_id: str | None = Field(default=None, max_length=64)
    resource_type: str | None = Field(default=None, min_length=1, max_length=64)
    resource_id: Id | None = None


class GrantOut(BaseModel):
    id: str
    principal_id: str
    organization_id: str
    team_id: str | None
    effect: Literal["allow", "deny"]
    action: str
    resource_type: str | None
    resource_id: str | None
    created_by: str | None
    created_at: dt.datetime


class ApiKeyCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "description": "At most one of `expires_in_days` and `expires_at`.",
            "not": {
                "required": ["expires_in_days", "expires_at"],
                "properties": {
                    "expires_in_days": {"type": "integer"},
                    "expires_at": {"type": "string"},
                },
            },
        }
    )

    name: str = Field(min_length=1, max_length=200)
    organization_id: str | None = Field(
        default=None, max_length=64, description="Defaults to the caller's organization"
    )
    scopes: list[KnownAction] | None = Field(
        default=None,
        max_length=50,
        description="Actions the key may take; empty or absent: the creator's role",
    )
    description: str | None = Field(default=None, max_length=1000)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)
    expires_at: dt.datetime | None = None


class ApiKeyOut(BaseModel):
    id: str
    prefix: str
    name: str
    description: str | None
    organization_id: str
    scopes: list[str]
    disabled: bool
    expires_at: dt.datetime | None
    created_by: str
    created_at: dt.datetime
    rotated_at: dt.datetime | None
    last_used_at: dt.datetime | None


class ApiKeyWithSecret(ApiKeyOut):
    key: str = Field(description="The full key: shown this once, never again")


class Me(BaseModel):
    principal_id: str
    authenticated: bool
    kind: Literal["user", "api_key", "dev"]
    email: str | None
    display_name: str | None
    email_verified: bool | None
    organization_id: str | None = Field(description="Set for API keys: their organization")
    api_key_id: str | None
    platform_admin: bool = Field(
        description="Whether the caller curates public galleries (FABRIC_PLATFORM_ADMINS)"
    )


class MyPermission(BaseModel):
    organization_id: str
    team_id: str | None
    role: str
    actions: list[str]
