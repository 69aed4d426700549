"""``fabric keys`` and ``fabric secrets``."""

from __future__ import annotations

import sys
from typing import Any, Optional, Tuple

import click

from .app import OUTPUT_OPTION, App, fmt, pass_app
from .output import emit

COLUMNS = ["id", "name", "prefix", "disabled", "expires_at", "last_used_at"]


@click.group()
def keys() -> None:
    """API keys of your organization."""


@keys.command("create", epilog="\b\nExample:\n  fabric keys create ci --scope jobs.create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, help="Limit the key to this action.")
@click.option("--expires-in-days", type=int)
@OUTPUT_OPTION
@pass_app
def create(
    app: App,
    name: str,
    scopes: Tuple[str, ...],
    expires_in_days: Optional[int],
    output: Optional[str],
) -> None:
    """Create a key; its secret is shown this once."""
    created: Any = app.client().create_api_key(
        name,
        scopes=list(scopes) or None,
        organization_id=app.settings.organization_id,
        expires_in_days=expires_in_days,
    )
    emit(created, fmt(app, output), text=f"{created.get('id')}  {created.get('key')}")


@keys.command("list")
@OUTPUT_OPTION
@pass_app
def list_(app: App, output: Optional[str]) -> None:
    """List keys (never their secrets)."""
    found = app.client().list_api_keys(organization_id=app.settings.organization_id)
    emit([dict(k) for k in found], fmt(app, output), COLUMNS)


@keys.command("rotate")
@click.argument("key_id")
@OUTPUT_OPTION
@pass_app
def rotate(app: App, key_id: str, output: Optional[str]) -> None:
    """Give a key a new secret (shown once); the old one stops working."""
    rotated: Any = app.client().rotate_api_key(key_id)
    emit(rotated, fmt(app, output), text=f"{rotated.get('id')}  {rotated.get('key')}")


@keys.command("disable")
@click.argument("key_id")
@OUTPUT_OPTION
@pass_app
def disable(app: App, key_id: str, output: Optional[str]) -> None:
    """Disable a key."""
    emit(dict(app.client().disable_api_key(key_id)), fmt(app, output), COLUMNS)


@click.group()
def secrets() -> None:
    """Organization secrets (values are write-only)."""


@secrets.command(
    "set",
    epilog="\b\nExamples:\n  fabric secrets set OPENAI_KEY\n  echo -n $V | fabric secrets set X",
)
@click.argument("name")
@OUTPUT_OPTION
@pass_app
def set_(app: App, name: str, output: Optional[str]) -> None:
    """Store the secret NAME; its value is read from stdin, or prompted for on a terminal."""
    if sys.stdin.isatty():
        value = click.prompt("Value", hide_input=True, confirmation_prompt=True, err=True)
    else:
        value = sys.stdin.read().rstrip("\n")
    if not value:
        raise click.UsageError("the secret value is empty")
    stored: Any = app.client().set_secret(name, value)
    emit(stored, fmt(app, output), text=f"Secret {name} stored.")


@secrets.command("list")
@OUTPUT_OPTION
@pass_app
def secrets_list(app: App, output: Optional[str]) -> None:
    """List secret names."""
    names = app.client().list_secrets()
    emit(names, fmt(app, output), text="\n".join(names))


def register(group: click.Group) -> None:
    group.add_command(keys)
    group.add_command(secrets)
