"""``fabric login|logout|whoami`` and ``fabric orgs``."""

from __future__ import annotations

from typing import Any, Optional

import click

from .. import FabricAuthError, FabricClient
from .app import OUTPUT_OPTION, App, fmt, pass_app
from .config import (
    credentials_path,
    load_all,
    remove_profile,
    session_values,
    update_profile,
)
from .output import emit


@click.command(
    epilog="\b\nExamples:\n  fabric login --api-key fk_...\n  fabric login --email me@x.io"
)
@click.option("--api-key", "key", help="Store this API key for the profile.")
@click.option("--email", help="Log in with email and password (prompted).")
@click.option("--magic-link", is_flag=True, help="Email a login link, then paste its token.")
@OUTPUT_OPTION
@pass_app
def login(
    app: App, key: Optional[str], email: Optional[str], magic_link: bool, output: Optional[str]
) -> None:
    """Log in and store the credentials in the profile (file mode 0600)."""
    s = app.settings
    if key:
        with FabricClient(base_url=s.base_url, api_key=key) as probe:
            me: Any = probe.get_me()
        update_profile(
            s.profile,
            base_url=s.base_url,
            api_key=key,
            access_token=None,
            refresh_token=None,
            access_expires_at=None,
        )
    else:
        email = email or click.prompt("Email", err=True)
        with FabricClient(base_url=s.base_url) as client:
            if magic_link:
                client.magic_link(email)
                token = click.prompt("Token from the emailed link", hide_input=True, err=True)
                auth: Any = client.verify_magic_link(token)
            else:
                password = click.prompt("Password", hide_input=True, err=True)
                auth = client.login(email, password)
            me = client.get_me()
        update_profile(s.profile, base_url=s.base_url, **session_values(auth))
    result = {"profile": s.profile, "credentials": str(credentials_path()), "me": me}
    emit(result, fmt(app, output), text=f"Logged in; profile {s.profile!r} saved.")


@click.command()
@OUTPUT_OPTION
@pass_app
def logout(app: App, output: Optional[str]) -> None:
    """End the profile's login session on the server and forget its credentials.

    A profile holding an API key is only forgotten here: the key stays valid until it is
    disabled (`fabric keys disable`)."""
    profile = app.settings.profile
    stored = load_all().get(profile, {})
    session_ended = False
    if stored.get("access_token") or stored.get("refresh_token"):
        try:
            # A session that expired is renewed first, so that it is the one revoked.
            app.client().logout()
            session_ended = True
        except FabricAuthError:
            session_ended = True  # the server had ended it already
    removed = remove_profile(profile)
    if not removed:
        text = "Not logged in."
    elif session_ended:
        text = f"Logged out of profile {profile!r}; the session is ended on the server."
    else:
        text = (
            f"Logged out of profile {profile!r}. Its API key stays valid: disable it with "
            "`fabric keys disable` if it should stop working."
        )
    result = {"profile": profile, "removed": removed, "session_ended": session_ended}
    emit(result, fmt(app, output), text=text)


@click.command()
@OUTPUT_OPTION
@pass_app
def whoami(app: App, output: Optional[str]) -> None:
    """Show who the current credentials act as."""
    emit(app.client().get_me(), fmt(app, output))


@click.group()
def orgs() -> None:
    """Organizations you belong to."""


@orgs.command("list")
@OUTPUT_OPTION
@pass_app
def orgs_list(app: App, output: Optional[str]) -> None:
    """List your organizations."""
    emit(app.client().list_organizations(), fmt(app, output), ["id", "slug", "name"])


@orgs.command("use", epilog="\b\nExample:\n  fabric orgs use org_123")
@click.argument("org")
@OUTPUT_OPTION
@pass_app
def orgs_use(app: App, org: str, output: Optional[str]) -> None:
    """Make ORG (an id) the profile's default organization."""
    found: Any = app.client().get_organization(org)
    update_profile(app.settings.profile, organization_id=found["id"])
    emit(found, fmt(app, output), text=f"Now using organization {found['id']}.")


def register(group: click.Group) -> None:
    for command in (login, logout, whoami, orgs):
        group.add_command(command)
