"""Logging in, profiles, keys, secrets, events and completion from the command line."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import time
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import yaml

from fabric_platform import FabricAuthError, FabricClient

from .conftest import Fabric

FORMATS = ["table", "json", "yaml"]
CLI = [sys.executable, "-m", "fabric_platform.cli.main"]


def test_password_login_whoami_and_logout(fabric: Fabric) -> None:
    with FabricClient(base_url=fabric.base_url) as client:
        client.signup("cli-user@example.com", "correct horse battery")
    logged = fabric(
        "--profile",
        "me",
        "login",
        "--email",
        "cli-user@example.com",
        stdin="correct horse battery\n",
    )
    assert logged.code == 0, logged.err
    path = fabric.config_dir / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())["me"]
    assert stored["access_token"]
    assert "correct horse" not in path.read_text()
    me = fabric("-o", "json", "whoami", FABRIC_PROFILE="me").json()
    assert "cli-user@example.com" in json.dumps(me)
    for output in FORMATS:
        shown = fabric("-o", output, "--profile", "me", "whoami")
        assert shown.code == 0, shown.err
        assert "cli-user@example.com" in shown.out
    # An expired access token is renewed with the (single-use) refresh token, once.
    profiles = json.loads(path.read_text())
    old_refresh = profiles["me"]["refresh_token"]
    profiles["me"]["access_expires_at"] = "0"
    path.write_text(json.dumps(profiles))
    assert "cli-user@example.com" in fabric("-o", "json", "--profile", "me", "whoami").out
    renewed = json.loads(path.read_text())["me"]
    assert renewed["refresh_token"] != old_refresh
    assert float(renewed["access_expires_at"]) > 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    orgs = fabric("-o", "json", "--profile", "me", "orgs", "list").json()
    used = fabric("--profile", "me", "orgs", "use", orgs[0]["id"])
    assert used.code == 0, used.err
    assert json.loads(path.read_text())["me"]["organization_id"] == orgs[0]["id"]
    session_token = json.loads(path.read_text())["me"]["access_token"]
    logged_out = fabric("--profile", "me", "logout")
    assert logged_out.out.strip() == (
        "Logged out of profile 'me'; the session is ended on the server."
    )
    assert "me" not in json.loads(path.read_text())
    # The server ended the session: its token no longer works anywhere.
    with (
        FabricClient(base_url=fabric.base_url, api_key=session_token) as client,
        pytest.raises(FabricAuthError),
    ):
        client.get_me()

    wrong = fabric("login", "--email", "cli-user@example.com", stdin="wrong password\n")
    assert wrong.code == 3
    assert wrong.err.strip().splitlines()[-1].startswith("error: ")


@pytest.mark.parametrize("output", FORMATS)
def test_keys_in_every_format_and_api_key_login(fabric: Fabric, output: str) -> None:
    created = fabric("-o", "json", "keys", "create", f"cli-{output}")
    assert created.code == 0, created.err
    key = created.json()
    assert fabric("-o", output, "keys", "list").code == 0
    assert key["id"] in fabric("-o", output, "keys", "list").out

    login = fabric("--profile", "ci", "login", "--api-key", key["key"])
    assert login.code == 0, login.err
    assert fabric("--profile", "ci", "-o", output, "whoami").code == 0

    rotated = fabric("-o", output, "keys", "rotate", key["id"])
    assert rotated.code == 0, rotated.err
    # The stored secret was the old one: refused now.
    assert fabric("--profile", "ci", "whoami").code == 3
    disabled = fabric("-o", output, "keys", "disable", key["id"])
    assert disabled.code == 0, disabled.err


@pytest.mark.parametrize("output", FORMATS)
def test_secrets_value_comes_from_stdin(fabric: Fabric, output: str) -> None:
    result = fabric("-o", output, "secrets", "set", f"CLI_{output.upper()}", stdin="s3cret-value\n")
    assert result.code == 0, result.err
    assert "s3cret-value" not in result.out
    listed = fabric("-o", "json", "secrets", "list").json()
    assert f"CLI_{output.upper()}" in listed
    assert fabric("secrets", "set", "EMPTY", stdin="").code == 2


@pytest.mark.parametrize("output", FORMATS)
def test_events_tail_of_a_run(fabric: Fabric, output: str) -> None:
    with FabricClient(base_url=fabric.base_url) as client:
        wf = client.upsert_workflow(
            "cli-events",
            [{"key": "a", "operation": "ai.generate", "config": {"prompt_template": "x"}}],
        )
        run_id = client.run_workflow(wf)
        client.wait_for_run(run_id, poll_interval=0.05, timeout=30)
    result = fabric("-o", output, "events", "tail", "--run", run_id, "--limit", "2")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == 2
    if output != "table":
        assert all(json.loads(line)["run_id"] == run_id for line in lines)


def test_completion_scripts(fabric: Fabric) -> None:
    assert "_fabric_completion" in fabric("completion", "bash").out
    assert "#compdef fabric" in fabric("completion", "zsh").out
    assert "complete" in fabric("completion", "fish").out


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_login_and_logout_speak_every_format(fabric: Fabric, output: str) -> None:
    email = f"formats-{output}@example.com"
    with FabricClient(base_url=fabric.base_url) as client:
        client.signup(email, "correct horse battery")
    logged = fabric("-o", output, "login", "--email", email, stdin="correct horse battery\n")
    assert logged.code == 0, logged.err
    shown = _parse(logged.out, output)
    assert shown["profile"] == "default"
    assert shown["me"]["email"] == email
    ended = _parse(fabric("-o", output, "logout").out, output)
    assert ended == {"profile": "default", "removed": True, "session_ended": True}
    again = _parse(fabric("-o", output, "logout").out, output)
    assert again == {"profile": "default", "removed": False, "session_ended": False}


def test_an_api_key_profile_is_forgotten_and_the_key_kept(fabric: Fabric) -> None:
    with FabricClient(base_url=fabric.base_url) as client:
        key = client.create_api_key("cli-logout")["key"]
    assert fabric("login", "--api-key", key).code == 0
    out = fabric("logout").out
    assert "Its API key stays valid" in out
    with FabricClient(base_url=fabric.base_url, api_key=key) as client:
        assert client.get_me()


def test_magic_link_login(fabric: Fabric) -> None:
    email = "magic-cli@example.com"
    with FabricClient(base_url=fabric.base_url) as client:
        client.signup(email, "correct horse battery")
    process = subprocess.Popen(
        [*CLI, "-o", "json", "login", "--magic-link", "--email", email],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=fabric.env(),
    )
    try:
        token = _mailed_token(fabric.base_url, email, "/v1/auth/magic-link/verify")
        out, err = process.communicate(token + "\n", timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert json.loads(out)["me"]["email"] == email
    me = fabric("-o", "json", "whoami").json()
    assert me["email"] == email


def _mailed_token(base_url: str, email: str, path: str) -> str:
    """The token of the newest link to `path` mailed to `email` (the dev outbox)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        mails = httpx.get(f"{base_url}/v1/dev/outbox", params={"to": email}).json()["data"]
        for mail in mails:
            found = re.search(rf"{re.escape(path)}\?token=([^\s&]+)", mail["body"])
            if found:
                return unquote(found.group(1))
        time.sleep(0.05)
    raise AssertionError(f"no mail with a link to {path} reached {email}")


def _parse(text: str, output: str) -> Any:
    return json.loads(text) if output == "json" else yaml.safe_load(text)
