"""The shared state of one invocation: resolved settings, output format, the client."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import click

from .. import FabricClient
from .config import Settings, session_values, update_profile

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_SERVER = 5


@dataclass
class App:
    settings: Settings
    output: str
    debug: bool
    _client: Optional[FabricClient] = field(default=None)

    def client(self) -> FabricClient:
        if self._client is None:
            s = self.settings
            self._client = FabricClient(
                base_url=s.base_url, api_key=s.api_key, organization_id=s.organization_id
            )
            if s.refresh_token:
                renew(self._client, s)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def renew(client: FabricClient, settings: Settings) -> None:
    """Start a fresh session from the profile's refresh token and store the new tokens."""
    assert settings.refresh_token is not None
    auth: Any = client.refresh_token(settings.refresh_token)
    values = session_values(auth)
    values["refresh_token"] = values["refresh_token"] or settings.refresh_token
    update_profile(settings.profile, **values)


pass_app = click.make_pass_decorator(App)

OUTPUT_OPTION = click.option(
    "--output",
    "-o",
    "output",
    type=click.Choice(["table", "json", "yaml"]),
    default=None,
    help="Output format (json is stable for scripts).",
)


def fmt(app: App, output: Optional[str]) -> str:
    return output or app.output


def parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{what} is not valid JSON: {exc.msg}") from None


def parse_context(pairs: Tuple[str, ...], files: Tuple[str, ...]) -> Dict[str, Any]:
    """Merge ``--context-file`` JSON objects, then ``--context k=v`` pairs (values JSON or text)."""
    context: Dict[str, Any] = {}
    for name in files:
        data = parse_json(Path(name).read_text(encoding="utf-8"), name)
        if not isinstance(data, dict):
            raise click.UsageError(f"{name} must hold a JSON object")
        context.update(data)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--context expects key=value, got {pair!r}")
        try:
            context[key] = json.loads(value)
        except json.JSONDecodeError:
            context[key] = value
    return context
