"""Request and response models for accounts and sessions (the OpenAPI comes from these)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fabric_server.auth.passwords import EMAIL_MAX_LENGTH, EMAIL_PATTERN
from fabric_server.bodies import RequestBody

# An address to look an account up by: anything that does not match simply finds none.
Email = Annotated[
    str, Field(min_length=3, max_length=320, description="Email address (case-insensitive)")
]
# An address to store (a new account, an invitation): the documented syntax.
NewEmail = Annotated[
    str,
    Field(
        pattern=EMAIL_PATTERN,
        max_length=EMAIL_MAX_LENGTH,
        description="Email address such as name@example.com (stored in lower case)",
    ),
]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
Token = Annotated[str, Field(min_length=1, max_length=4096)]


class SignupRequest(BaseModel):
    email: NewEmail
    password: str = Field(
        min_length=1, max_length=1024, description="At least 8 characters by default"
    )
    display_name: str | None = Field(default=None, max_length=200)


class LoginRequest(BaseModel):
    email: Email
    password: Password


class RefreshRequest(BaseModel):
    refresh_token: Token


class LogoutRequest(BaseModel):
    access_token: str | None = Field(
        default=None,
        max_length=4096,
        description="The access token to sign out; defaults to the Authorization header's",
    )


class ChangePasswordRequest(BaseModel):
    current_password: Password
    new_password: Password


class EmailRequest(BaseModel):
    email: Email


class TokenRequest(BaseModel):
    token: Token


class ResetPasswordRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "description": "The mailed token goes in `token` or `access_token`.",
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("token", "access_token")
            ],
        }
    )

    token: str | None = Field(default=None, min_length=1, max_length=4096)
    access_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="The mailed recovery token (the field name reference clients send)",
    )
    new_password: Password

    @model_validator(mode="after")
    def _one_token(self) -> ResetPasswordRequest:
        if not (self.token or self.access_token):
            raise ValueError("the mailed token is required, in `token` or `access_token`")
        return self

    @property
    def recovery_token(self) -> str:
        return self.token or self.access_token or ""


class SocialLoginRequest(RequestBody):
    provider: str = Field(min_length=1, max_length=64)
    provider_user_id: str = Field(min_length=1, max_length=255)
    email: NewEmail | None = None
    display_name: str | None = Field(default=None, max_length=200)
    avatar_url: str | None = Field(default=None, max_length=2000)
    email_verified: bool = Field(
        default=True, description="Whether the caller verified the email (trusted callers)"
    )


class AuthUser(BaseModel):
    id: str
    email: str | None
    display_name: str | None
    email_verified: bool


class AuthResponse(BaseModel):
    access_token: str = Field(description="JWT (HS256) to send as `Authorization: Bearer …`")
    refresh_token: str | None = Field(description="Single-use; trade it for a new pair")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - not a secret
    expires_in: int = Field(description="Access-token lifetime in seconds")
    user: AuthUser


class MessageOut(BaseModel):
    message: str


class RevokedOut(BaseModel):
    revoked: int = Field(description="How many sessions were signed out")


class ResetTokenStatus(BaseModel):
    valid: Literal[True] = True
    expires_at: dt.datetime
    next: str = Field(description="What to do with the token")
