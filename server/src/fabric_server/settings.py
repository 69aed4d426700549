"""Server settings: the only place that reads the environment."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ORGANIZATION_ID = "00000000-0000-0000-0000-000000000010"
DEV_OWNER_ID = "00000000-0000-0000-0000-000000000001"


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

    sse_keepalive_seconds: float = 15.0
    sse_poll_seconds: float = 1.0
    sse_max_connection_seconds: float = 3600.0

    signing_secret: str | None = None
    secrets_master_key: str | None = None

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL: PostgreSQL when configured, else SQLite in the data dir."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'fabric.db').resolve()}"
        return to_async_url(url)

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
