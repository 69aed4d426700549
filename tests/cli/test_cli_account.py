"""Logging in, profiles, keys, secrets, events and completion from the command line."""

from __future__ import annotations

import json
import stat

import pytest

from fabric_platform import FabricClient

from .conftest import Fabric

FORMATS = ["table", "json", "yaml"]


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
    assert fabric("--profile", "me", "logout").out.strip() == "Logged out of profile 'me'."
    assert "me" not in json.loads(path.read_text())

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
