"""Server settings: the only place that reads the environment."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ORGANIZATION_ID = "00000000-0000-0000-0000-000000000010"
DEV_OWNER_ID = "00000000-0000-0000-0000-000000000001"


class OAuthProviderSettings(BaseModel):
    """A social sign-in provider given by its endpoints (any standard OpenID Connect issuer)."""

    client_id: str
    client_secret: str | None = None
    authorize_url: str
    token_url: str
    userinfo_url: str
    scopes: str = "openid email profile"
    profile: Literal["oidc", "github"] = Field(
        default="oidc", description="How to read the user profile: OIDC claims or GitHub's API."
    )
    emails_url: str | None = Field(default=None, description="GitHub style: verified emails.")


class Settings(BaseSettings):
    """Every knob of the server, read from `FABRIC_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="FABRIC_", extra="ignore")

    env: Literal["development", "production"] = "development"
    dev_mode: bool | None = Field(
        default=None,
        description="Force dev mode on or off; by default it is on when bound to loopback "
        "and env is not production.",
    )
    host: str = "127.0.0.1"
    port: int = 3001
    data_dir: Path = Path(".fabric")
    database_url: str | None = None
    log_level: str = "info"

    run_workers: bool = True
    worker_concurrency: int = 4
    worker_poll_interval: float = 1.0
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 10.0

    job_max_attempts: int = 3
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 300.0

    workflow_node_timeout_seconds: float = Field(
        default=300.0, gt=0, description="Default per-node timeout of workflow nodes."
    )
    workflow_max_fan_out: int = Field(
        default=1000, ge=1, description="Most child runs one fan-out node may start."
    )
    http_allow_private: bool | None = Field(
        default=None,
        description="Let http.request nodes reach private, loopback and link-local addresses; "
        "by default allowed in dev mode only.",
    )
    http_max_response_bytes: int = Field(default=1_048_576, ge=1)

    scheduler_enabled: bool = Field(
        default=True, description="Fire cron schedules in processes that run workers."
    )
    scheduler_poll_seconds: float = Field(
        default=5.0, gt=0, description="Longest pause between two looks at the schedules."
    )
    scheduler_misfire_grace_seconds: float = Field(
        default=60.0,
        gt=0,
        description="An occurrence found later than this (downtime) counts as missed and is "
        "handled by the schedule's catch-up policy.",
    )

    sse_keepalive_seconds: float = 15.0
    sse_poll_seconds: float = 1.0
    sse_max_connection_seconds: float = 3600.0

    event_retention_days: float = Field(
        default=30.0, description="Delete events older than this; 0 keeps them forever."
    )
    retention_interval_seconds: float = 3600.0

    signing_secret: str | None = None
    secrets_master_key: str | None = None

    # Accounts and sessions (fabric_server.auth).
    public_url: str | None = Field(
        default=None,
        description="Base URL of this server as users reach it (mail links, OAuth callbacks); "
        "default http://127.0.0.1:<port>.",
    )
    auth_link_url: str | None = Field(
        default=None,
        description="Where mailed links point: a web app serving /verify, /magic-link/verify "
        "and /reset-password (each given ?token=…). Default: this server's own endpoints.",
    )
    password_min_length: int = Field(default=8, ge=1, le=256)
    password_require_classes: bool = Field(
        default=False, description="Also demand upper, lower, digit and symbol (off: NIST)."
    )
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    access_token_ttl_seconds: int = Field(default=7200, ge=1)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, ge=1)
    verify_token_ttl_seconds: int = Field(default=86400, ge=1)
    magic_link_ttl_seconds: int = Field(default=900, ge=1)
    reset_token_ttl_seconds: int = Field(default=3600, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_lock_seconds: int = Field(default=900, ge=1)
    auth_rate_limit: int = Field(
        default=20, ge=0, description="Requests per IP per auth endpoint per window; 0 = off."
    )
    auth_rate_window_seconds: float = Field(default=60.0, gt=0)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "Fabric <no-reply@localhost>"
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    social_redirect_url: str | None = Field(
        default=None,
        description="When set, social sign-in ends with a redirect here carrying the tokens "
        "in the URL fragment; otherwise the callback answers with JSON.",
    )
    social_login_trusted_key: str | None = None
    google_client_id: str | None = None
    google_client_secret: str | None = None
    github_client_id: str | None = None
    github_client_secret: str | None = None
    oidc_providers: dict[str, OAuthProviderSettings] = Field(default_factory=dict)

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL: PostgreSQL when configured, else SQLite in the data dir."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'fabric.db').resolve()}"
        return to_async_url(url)

    @property
    def resolved_public_url(self) -> str:
        """Where users reach this server, without a trailing slash."""
        return (self.public_url or f"http://127.0.0.1:{self.port}").rstrip("/")

    @property
    def is_dev(self) -> bool:
        """Dev mode: anonymous calls act as the dev owner and `X-Principal-Id` is honoured."""
        if self.dev_mode is not None:
            return self.dev_mode
        return self.env != "production" and _is_loopback(self.host)

    @property
    def http_private_allowed(self) -> bool:
        """Whether outbound workflow HTTP may reach private and loopback addresses."""
        return self.is_dev if self.http_allow_private is None else self.http_allow_private


def to_async_url(url: str) -> str:
    """Map plain database URLs onto the async drivers the server uses."""
    for prefix, driver in (
        ("postgresql+asyncpg://", None),
        ("sqlite+aiosqlite://", None),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return url if driver is None else driver + url[len(prefix) :]
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
