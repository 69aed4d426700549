"""Server settings: the only place that reads the environment."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

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


class ModelPrice(BaseModel):
    """What a model costs: USD per million input and output units, plus USD per call.

    The unit is tokens for most models; speech models are priced per character and whisper
    per second of audio. `per_request` is charged once per call (per image for image models).
    """

    input: float = Field(default=0.0, ge=0)
    output: float = Field(default=0.0, ge=0)
    per_request: float = Field(default=0.0, ge=0)
    unit: Literal["tokens", "characters", "seconds"] = "tokens"


class Settings(BaseSettings):
    """Every knob of the server, read from `FABRIC_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="FABRIC_", extra="ignore")

    env: Literal["development", "production"] = "development"
    dev_mode: bool | None = Field(
        default=None,
        description="Force dev mode on or off; by default it is on when bound to loopback "
        "and env is not production.",
    )
    dev_mode_on_network: bool = Field(
        default=False,
        description="Accept dev mode on a non-loopback address (a trusted network only): "
        "every caller that reaches the port acts as the dev owner and a platform admin.",
    )
    dev_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names dev mode on a loopback address answers besides localhost and "
        "loopback addresses (requests naming another host are refused, as DNS rebinding "
        "would send them), and accepts as the Origin of changes.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=3001, ge=1, le=65535)
    data_dir: Path = Path(".fabric")
    database_url: str | None = None
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description="`json`: one JSON object per line (time, level, logger, message, request "
        "and work context); `text`: plain lines. By default text, and json when "
        "FABRIC_ENV=production.",
    )
    shutdown_grace_seconds: float = Field(
        default=15.0,
        gt=0,
        description="On stop: how long open requests and running work items may take to "
        "finish before they are cut off (work items are handed back to the queue).",
    )
    http_header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A request's line and headers must arrive within this time of its first "
        "byte (a new connection's first request: of the connection); else it is closed.",
    )
    http_body_idle_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest pause inside a request body before the connection is closed.",
    )
    http_keep_alive_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long an idle connection is kept open between requests.",
    )
    http_max_header_bytes: int = Field(
        default=65536,
        ge=4096,
        description="Largest request line plus headers (431 beyond).",
    )
    worker_health_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="`fabric-server worker` answers /healthz and /readyz on this port; "
        "unset: no listener.",
    )
    worker_health_host: str = "127.0.0.1"

    run_workers: bool = True
    api_processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="API processes `serve` runs on its port (each with its own caches, kept "
        "exact through the database); more use more cores, on PostgreSQL",
    )
    worker_concurrency: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="Jobs and workflow nodes a worker runs at once (they mostly wait on "
        "providers); one organization runs at most half of them while others have work "
        "waiting",
    )
    webhook_concurrency: int = Field(
        default=8, ge=1, le=1000, description="Webhook deliveries a worker makes at once"
    )
    worker_poll_interval: float = 1.0
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 10.0

    worker_task_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a code worker holds a task without a heartbeat; a worker that "
        "stops heartbeating loses its tasks to other workers after this",
    )
    worker_heartbeat_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="How often code workers are told to heartbeat; a worker not heard from "
        "for three intervals is shown stale and announced offline",
    )
    worker_schedule_to_start_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Default schedule_to_start_timeout of code workers' tasks: a task no "
        "worker took by then fails its node (a node's own config wins); unset: tasks wait "
        "for a worker as long as it takes",
    )
    worker_task_output_max_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest output (JSON) a code worker may report for a task (422 "
        "output_too_large beyond)",
    )

    job_max_attempts: int = 3
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 300.0

    workflow_node_timeout_seconds: float = Field(
        default=300.0, gt=0, description="Default per-node timeout of workflow nodes."
    )
    workflow_max_fan_out: int = Field(
        default=1000, ge=1, description="Most child runs one fan-out node may start."
    )
    workflow_max_descendants: int = Field(
        default=10_000,
        ge=1,
        description="Most runs one run may have below it, children of children included "
        "(a node that would start more fails)",
    )
    workflow_max_rendered_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Most bytes one templated config field of a node may render to; counted "
        "while rendering, which stops at the limit (the node fails: template_output_too_large)",
    )
    workflow_max_node_output_bytes: int = Field(
        default=2_097_152,
        ge=1024,
        description="Largest output a workflow node may produce (the node fails: "
        "node_output_too_large)",
    )
    workflow_max_context_bytes: int = Field(
        default=8_388_608,
        ge=1024,
        description="Largest a run context may grow through node outputs (the node fails: "
        "context_too_large)",
    )
    org_max_active_jobs: int = Field(
        default=10_000,
        ge=0,
        description="Jobs an organization may have pending or started at once (429 beyond; "
        "0: no limit)",
    )
    org_max_active_runs: int = Field(
        default=1_000,
        ge=0,
        description="Top-level runs an organization may have unfinished at once (429 beyond; "
        "child runs count against their root's descendant limit instead; 0: no limit)",
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
    sse_recheck_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How often an open event stream checks that its caller may still read "
        "it (signed out, removed, key disabled: the stream ends)",
    )
    sse_max_streams_per_principal: int = Field(
        default=50,
        ge=0,
        description="Event streams one user (or dev principal) may have open at once in one "
        "API process (429 rate_limited beyond; 0: no limit)",
    )
    sse_max_streams_per_organization: int = Field(
        default=500,
        ge=0,
        description="Event streams open at once about one organization in one API process "
        "(429 rate_limited beyond; 0: no limit)",
    )

    event_retention_days: float = Field(
        default=30.0, description="Delete events older than this; 0 keeps them forever."
    )
    retention_interval_seconds: float = 3600.0

    signing_secret: str | None = None
    secrets_master_key: str | None = None
    secrets_previous_master_keys: SecretStr | None = Field(
        default=None,
        description="Retired master keys, comma-separated, in the form of "
        "FABRIC_SECRETS_MASTER_KEY: values they sealed still open, nothing new is sealed "
        "with them (`fabric-server rotate-secrets` re-seals under the current key).",
    )

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
    metrics_enabled: bool | None = Field(
        default=None,
        description="Serve `GET /metrics`; by default on in dev mode, or when a token is set.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token required by `GET /metrics` (enables it).",
    )
    check_responses: bool = Field(
        default=False,
        description=(
            "Refuse (500) a success response whose data the route's declared model would "
            "change: extra or missing fields, other types (for tests and development)."
        ),
    )
    password_require_classes: bool = Field(
        default=False, description="Also demand upper, lower, digit and symbol (off: NIST)."
    )
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    password_hash_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Password hashes (sign-in, sign-up, changes) one process computes at once; "
        "the others wait in arrival order",
    )
    password_hash_queue: int = Field(
        default=64,
        ge=1,
        description="Password checks that may wait for a turn in one process; beyond, a "
        "sign-in is refused at once (429 rate_limited)",
    )
    access_token_ttl_seconds: int = Field(default=7200, ge=1)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, ge=1)
    verify_token_ttl_seconds: int = Field(default=86400, ge=1)
    magic_link_ttl_seconds: int = Field(default=900, ge=1)
    reset_token_ttl_seconds: int = Field(default=3600, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_lock_seconds: int = Field(default=900, ge=1)
    login_account_max_failures: int = Field(
        default=50,
        ge=1,
        description="Failed sign-ins of one email from any addresses, within "
        "FABRIC_LOGIN_LOCK_SECONDS, that lock the email everywhere for that long (a magic "
        "link or a reset lifts it)",
    )
    login_address_max_failures: int = Field(
        default=100,
        ge=1,
        description="Failed sign-ins from one client address, whatever the emails, within "
        "FABRIC_LOGIN_LOCK_SECONDS, that lock the address for that long",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of the reverse proxies in front of the API: "
        "only their X-Forwarded-For / X-Forwarded-Proto are believed; empty: none, the "
        "client address is the connection's",
    )
    auth_retention_days: float = Field(
        default=7.0,
        ge=0,
        description="Delete sessions, refresh tokens, mailed tokens and expired or revoked "
        "invitations this many days after they stopped working; 0 keeps them forever.",
    )
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

    # Organizations, invitations, API keys (fabric_server.orgs, fabric_server.access).
    invitation_ttl_seconds: int = Field(default=7 * 86400, ge=60)
    invitation_max_pending: int = Field(
        default=100, ge=1, description="Pending invitations an organization may have at once."
    )
    invitation_max_per_hour: int = Field(
        default=20, ge=1, description="Invitations an organization may send per hour."
    )
    invite_redirect_url: str | None = Field(
        default=None,
        description="Where the mailed invitation link lands after accepting (a 302 carrying "
        "`invitation_id`, `organization_id` and `status`, or `error`); default: JSON.",
    )
    platform_admins: str = Field(
        default="",
        description="Platform administrators (they curate public galleries): account emails, "
        "comma-separated; only signed-in users whose listed email is verified qualify.",
    )

    # Model providers (fabric_server.providers). Keys set here serve every organization that
    # has not stored its own OPENAI_API_KEY / ANTHROPIC_API_KEY secret.
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = Field(
        default=None,
        description="An OpenAI-compatible API root including /v1 (vLLM, Ollama, llama.cpp, "
        "LM Studio); default https://api.openai.com/v1. Trusted: may be a private address.",
    )
    openai_default_base_url: str = Field(
        default="https://api.openai.com/v1",
        description="Where OpenAI itself is reached when no base URL is configured.",
    )
    openai_models: str = Field(
        default="gpt-4o,gpt-4o-mini,gpt-4.1,gpt-4.1-mini,gpt-4.1-nano,o3-mini,o4-mini",
        description="Chat models the openai provider offers (comma-separated).",
    )
    openai_embedding_models: str = Field(
        default="text-embedding-3-small,text-embedding-3-large",
        description="Embedding models the openai provider offers (comma-separated).",
    )
    openai_default_model: str = "gpt-4o-mini"
    openai_default_embedding_model: str = "text-embedding-3-small"
    openai_tier: Literal["basic", "premium"] = Field(
        default="premium", description="basic suits a local OpenAI-compatible server."
    )
    openai_image_models: str = Field(
        default="dall-e-3,dall-e-2,gpt-image-1",
        description="Image models the openai provider offers (comma-separated).",
    )
    openai_default_image_model: str = "dall-e-3"
    openai_speech_models: str = Field(
        default="tts-1,tts-1-hd,gpt-4o-mini-tts",
        description="Text-to-speech models the openai provider offers (comma-separated).",
    )
    openai_default_speech_model: str = "tts-1"
    openai_default_voice: str = Field(
        default="alloy", description="The voice of speech when a request names none."
    )
    openai_transcription_models: str = Field(
        default="whisper-1,gpt-4o-transcribe,gpt-4o-mini-transcribe",
        description="Speech-to-text models the openai provider offers (comma-separated).",
    )
    openai_default_transcription_model: str = "whisper-1"
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_version: str = "2023-06-01"
    anthropic_models: str = Field(
        default="claude-haiku-4-5,claude-sonnet-4-5,claude-opus-4-1,claude-sonnet-4-0,"
        "claude-3-7-sonnet-latest,claude-3-5-haiku-latest",
        description="Claude models listed (any other claude-* model is accepted too).",
    )
    anthropic_default_model: str = "claude-haiku-4-5"
    anthropic_max_tokens: int = Field(default=1024, ge=1)
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description='Price overrides, JSON: {"llama3.2": {"input": 0, "output": 0}, '
        '"dall-e-3": {"per_request": 0.04}}.',
    )
    provider_timeout_seconds: float = Field(default=60.0, gt=0)
    provider_max_retries: int = Field(default=2, ge=0, le=10)
    provider_retry_base_seconds: float = Field(default=0.5, ge=0)
    provider_circuit_failures: int = Field(default=3, ge=1)
    provider_circuit_cooldown_seconds: float = Field(default=30.0, ge=0)
    provider_health_ttl_seconds: float = Field(default=60.0, ge=0)
    allow_private_provider_urls: bool = Field(
        default=False,
        description="Let organizations point their OPENAI_BASE_URL secret at private or "
        "loopback addresses (the server's own FABRIC_OPENAI_BASE_URL is always trusted).",
    )
    # Webhooks (fabric_server.webhooks).
    webhook_allow_private: bool | None = Field(
        default=None,
        description="Allow webhook URLs in private, loopback, link-local and reserved ranges; "
        "default: allowed in dev mode, refused otherwise.",
    )
    webhook_allowed_networks: list[str] = Field(
        default_factory=list,
        description="When set, deliveries may only reach addresses in these networks (CIDR), "
        'e.g. ["127.0.0.0/8"] in tests.',
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_retry_schedule: list[float] = Field(
        default_factory=lambda: [30.0, 120.0, 600.0, 3600.0, 14400.0, 28800.0],
        min_length=1,
        description="Seconds before retry 1, 2, …; later retries reuse the last value.",
    )
    webhook_retry_after_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest receiver `Retry-After` that is honoured."
    )
    webhook_disable_after_days: float = Field(
        default=3.0, ge=0, description="Disable an endpoint failing this long; 0 = never."
    )
    webhook_disable_after_failures: int = Field(
        default=20, ge=0, description="Disable after this many events failed in a row; 0 = never."
    )
    webhook_dispatch_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the dispatcher looks for events unprompted."
    )
    webhook_delivery_retention_days: float = Field(
        default=30.0,
        ge=0,
        description="Delete finished deliveries and their attempts this many days after they "
        "finished; 0 keeps them forever. Pending and retrying deliveries are always kept.",
    )

    # Security hardening: mail outside dev mode (fabric_server.mail), request shape
    # (fabric_server.api.body_guard).
    dev_outbox: bool | None = Field(
        default=None,
        description="Without SMTP, keep mail (sign-in, reset and invitation links, in clear "
        "text) in the dev outbox: the database and <data_dir>/outbox. Default: in dev mode "
        "only; outside it the API refuses to start without SMTP unless this is true.",
    )
    json_max_depth: int = Field(
        default=64,
        ge=2,
        le=200,
        description="Deepest nesting of objects and arrays accepted in a JSON request body "
        "(contexts, inputs, payloads); deeper is 400 validation_failed.",
    )
    max_request_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted, with or without Content-Length "
        "(counted while it is read); larger is 413 payload_too_large.",
    )
    event_payload_max_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Largest event payload stored (and so sent on streams and to webhooks); "
        "fields of a larger one are left out, listed under `truncated` (the job or run "
        "holds the whole value).",
    )

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if not value:
            return None  # `FABRIC_DATABASE_URL=` (empty): the default SQLite database
        check_database_url(value)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # a ValueError names the bad one
        return value

    @field_validator("auth_retention_days")
    @classmethod
    def _auth_retention(cls, value: float) -> float:
        # Shorter windows would also forget revoked invitations inside the hour the
        # per-organization invitation limit counts, letting an admin send more than it allows.
        if 0 < value < 1:
            raise ValueError("keep credentials at least 1 day (or 0: forever)")
        return value

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
    def webhook_private_allowed(self) -> bool:
        """Whether webhooks may target private and loopback addresses."""
        if self.webhook_allow_private is not None:
            return self.webhook_allow_private
        return self.is_dev

    @property
    def metrics_exposed(self) -> bool:
        """Whether `GET /metrics` answers (otherwise it is a 404)."""
        if self.metrics_enabled is not None:
            return self.metrics_enabled
        return self.metrics_token is not None or self.is_dev

    @property
    def resolved_log_format(self) -> Literal["json", "text"]:
        """The log format: as set, else json in production and text otherwise."""
        if self.log_format is not None:
            return self.log_format
        return "json" if self.env == "production" else "text"

    @property
    def is_dev(self) -> bool:
        """Dev mode: anonymous calls act as the dev owner and `X-Principal-Id` is honoured."""
        if self.dev_mode is not None:
            return self.dev_mode
        return self.env != "production" and (self.dev_mode_on_network or self.on_loopback)

    @property
    def on_loopback(self) -> bool:
        """Whether the API is bound to a loopback address (reachable from this machine only)."""
        return is_loopback(self.host)

    @property
    def dev_outbox_allowed(self) -> bool:
        """Whether mail may go to the dev outbox (when no SMTP host is set)."""
        return self.is_dev if self.dev_outbox is None else self.dev_outbox

    @property
    def mail_delivery_problem(self) -> str | None:
        """Why this configuration cannot deliver mail safely, or None."""
        if self.smtp_host or self.dev_outbox_allowed:
            return None
        return (
            "outside dev mode the server needs FABRIC_SMTP_HOST to deliver sign-in, reset and "
            "invitation links; FABRIC_DEV_OUTBOX=true keeps them in clear text in the database "
            "and the data dir instead (for trials only)"
        )

    @property
    def http_private_allowed(self) -> bool:
        """Whether outbound workflow HTTP may reach private and loopback addresses."""
        return self.is_dev if self.http_allow_private is None else self.http_allow_private


_ASYNC_DRIVERS: tuple[tuple[str, str | None], ...] = (
    ("postgresql+asyncpg://", None),
    ("sqlite+aiosqlite://", None),
    ("postgresql://", "postgresql+asyncpg://"),
    ("postgres://", "postgresql+asyncpg://"),
    ("sqlite://", "sqlite+aiosqlite://"),
)


def to_async_url(url: str) -> str:
    """Map plain database URLs onto the async drivers the server uses."""
    for prefix, driver in _ASYNC_DRIVERS:
        if url.startswith(prefix):
            return url if driver is None else driver + url[len(prefix) :]
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")


DATABASE_URL_FORMS = "postgresql://user:password@host:5432/dbname or sqlite:////path/to/fabric.db"


def check_database_url(url: str) -> None:
    """Raise ValueError (saying what is wrong, never echoing a password) unless `url` is a
    PostgreSQL or SQLite URL the server can use."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not scheme:
        raise ValueError(f"not a database URL; use {DATABASE_URL_FORMS}")
    if not any(url.startswith(prefix) for prefix, _ in _ASYNC_DRIVERS):
        raise ValueError(f"unsupported scheme {scheme!r}; use {DATABASE_URL_FORMS}")
    try:
        parsed = make_url(to_async_url(url))
    except (ArgumentError, ValueError):
        raise ValueError(f"not a database URL; use {DATABASE_URL_FORMS}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.host or not parsed.database or parsed.database == ":memory:":
            raise ValueError(
                "a SQLite URL needs a file path after three slashes "
                "(sqlite:///relative.db or sqlite:////absolute/path.db)"
            )
    elif not parsed.database:
        raise ValueError(f"the URL names no database; use {DATABASE_URL_FORMS}")


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (or `localhost`)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
