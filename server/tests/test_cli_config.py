"""`fabric-server` as a user meets it: bad configuration is one line naming the setting and
the fix (exit status 2, no traceback) before anything starts; `.env`; `--version`;
`migrate --status`; `backup`."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_helpers import assert_config_error, cli_env, run_cli, run_cli_all
from server_helpers import wait_for_job
from sqlalchemy import text
from sqlalchemy.engine import make_url

from fabric_server import __version__
from fabric_server.db.database import Database
from fabric_server.db.migrate import downgrade
from fabric_server.settings import to_async_url
from fabric_server.testing import LiveServer, fast_settings, free_port

PASSWORD = "pw-NEVER-SHOWN-7731"


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A loopback port another process already listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_version(tmp_path: Path) -> None:
    result = run_cli("--version", env=cli_env(tmp_path / "data"), cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"fabric-server {__version__}"


BAD_SETTINGS = [
    ("FABRIC_ENV", "prod", "serve", "'development' or 'production'"),
    ("FABRIC_PORT", "abc", "serve", "1 to 65535"),
    ("FABRIC_PORT", "70000", "worker", "65535"),
    ("FABRIC_DEV_MODE", "maybe", "serve", "true or false"),
    ("FABRIC_LOG_LEVEL", "loud", "migrate", "'debug'"),
    ("FABRIC_SHUTDOWN_GRACE_SECONDS", "-1", "serve", "greater than 0"),
    ("FABRIC_MODEL_PRICES", "{not json", "rotate-secrets", "JSON"),
]


def test_a_bad_setting_is_named_with_its_allowed_values(tmp_path: Path) -> None:
    runs = [
        ([command], cli_env(tmp_path / "data", **{variable: value}), tmp_path)
        for variable, value, command, _ in BAD_SETTINGS
    ]
    results = run_cli_all(runs)
    for (variable, value, _, expected), result in zip(BAD_SETTINGS, results, strict=True):
        line = assert_config_error(result, variable, expected)
        assert f"{variable}={value!r}" in line or variable == "FABRIC_MODEL_PRICES", line
    assert not (tmp_path / "data").exists()  # nothing started


MALFORMED_URLS = [
    (f"mysql://fabric:{PASSWORD}@db.example.com/fabric", "serve", "unsupported scheme 'mysql'"),
    (f"postgresql://fabric:{PASSWORD}@db:port/fabric", "migrate", "not a database URL"),
    ("sqlite://relative.db", "worker", "three slashes"),
    ("fabric.db", "serve", "not a database URL"),
]


def test_a_malformed_database_url_is_refused_with_the_forms_to_use(tmp_path: Path) -> None:
    runs = [
        ([command], cli_env(tmp_path / "data", FABRIC_DATABASE_URL=url), tmp_path)
        for url, command, _ in MALFORMED_URLS
    ]
    results = run_cli_all(runs)
    for (_, _, expected), result in zip(MALFORMED_URLS, results, strict=True):
        line = assert_config_error(result, "FABRIC_DATABASE_URL", expected, "sqlite:///")
        assert PASSWORD not in line


def test_an_unreachable_postgresql_is_reported_before_anything_starts(
    tmp_path: Path, closed_port: int
) -> None:
    url = f"postgresql://fabric:{PASSWORD}@127.0.0.1:{closed_port}/fabric"
    env = cli_env(tmp_path / "data", FABRIC_DATABASE_URL=url)
    commands = [["serve"], ["worker"], ["migrate"], ["migrate", "--status"], ["rotate-secrets"]]
    results = run_cli_all([(command, env, tmp_path) for command in commands])
    for result in results:
        line = assert_config_error(result, "FABRIC_DATABASE_URL", f"127.0.0.1:{closed_port}")
        assert "check that the database server runs" in line
        assert PASSWORD not in line


def test_a_missing_postgresql_database_is_named(database_url: str, tmp_path: Path) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server is needed")
    missing = make_url(database_url).set(database="fabric_no_such_db").render_as_string(False)
    env = cli_env(tmp_path / "data", FABRIC_DATABASE_URL=missing)
    line = assert_config_error(run_cli("serve", env=env, cwd=tmp_path), "FABRIC_DATABASE_URL")
    assert 'database "fabric_no_such_db" does not exist' in line


def test_a_sqlite_file_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nowhere/fabric.db"
    env = cli_env(tmp_path / "data", FABRIC_DATABASE_URL=url)
    line = assert_config_error(run_cli("worker", env=env, cwd=tmp_path), "FABRIC_DATABASE_URL")
    assert "does not exist" in line


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("not a directory")
    result = run_cli("serve", env=cli_env(data), cwd=tmp_path)
    assert "is a file, not a directory" in assert_config_error(result, "FABRIC_DATA_DIR")


def test_a_data_dir_that_cannot_be_created_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = run_cli("migrate", env=cli_env(tmp_path / "file" / "data"), cwd=tmp_path)
    assert "cannot create" in assert_config_error(result, "FABRIC_DATA_DIR")


def test_a_data_dir_that_is_not_writable_is_refused(tmp_path: Path) -> None:
    result = run_cli("serve", env=cli_env(_unwritable_directory(tmp_path)), cwd=tmp_path)
    assert "is not writable" in assert_config_error(result, "FABRIC_DATA_DIR")


def _unwritable_directory(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        return locked
    # Permissions do not stop root: use a directory of a file system no one writes to.
    for candidate in (Path("/sys"), Path("/proc")):
        try:
            handle, probe = tempfile.mkstemp(dir=candidate)
        except OSError:
            return candidate
        os.close(handle)
        os.unlink(probe)
    pytest.skip("no unwritable directory for root on this machine")


def test_a_port_in_use_is_reported_before_migrations_run(
    tmp_path: Path, listening: socket.socket
) -> None:
    port = listening.getsockname()[1]
    result = run_cli("serve", "--port", str(port), env=cli_env(tmp_path / "data"), cwd=tmp_path)
    line = assert_config_error(result, "--port", "already in use")
    assert str(port) in line
    assert not (tmp_path / "data" / "fabric.db").exists()  # no migration ran

    env = cli_env(tmp_path / "data", FABRIC_PORT=str(port))
    assert_config_error(run_cli("serve", env=env, cwd=tmp_path), "FABRIC_PORT", "already in use")


def test_a_worker_probe_port_in_use_is_reported(tmp_path: Path, listening: socket.socket) -> None:
    port = str(listening.getsockname()[1])
    env = cli_env(tmp_path / "data", FABRIC_WORKER_HEALTH_PORT=port)
    result = run_cli("worker", env=env, cwd=tmp_path)
    assert_config_error(result, "FABRIC_WORKER_HEALTH_PORT", "already in use")
    assert not (tmp_path / "data" / "fabric.db").exists()


def test_a_network_address_without_production_settings_explains_the_choice(
    tmp_path: Path,
) -> None:
    result = run_cli("serve", "--host", "0.0.0.0", env=cli_env(tmp_path / "data"), cwd=tmp_path)
    assert_config_error(
        result,
        "--host 0.0.0.0",
        "FABRIC_SIGNING_SECRET",
        "FABRIC_SECRETS_MASTER_KEY",
        "FABRIC_DEV_MODE_ON_NETWORK=true",
        "--dev-on-network",
    )


def test_forced_dev_mode_on_a_network_address_needs_an_acknowledgement(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data", FABRIC_DEV_MODE="true", FABRIC_HOST="0.0.0.0")
    line = assert_config_error(
        run_cli("serve", env=env, cwd=tmp_path), "FABRIC_HOST=0.0.0.0", "owner and platform-admin"
    )
    assert "FABRIC_DEV_MODE_ON_NETWORK=true" in line


def test_production_names_the_missing_secrets(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data", FABRIC_ENV="production", FABRIC_SIGNING_SECRET="s" * 32)
    commands = [["serve"], ["worker"], ["migrate"]]
    for result in run_cli_all([(command, env, tmp_path) for command in commands]):
        line = assert_config_error(result, "FABRIC_ENV=production", "FABRIC_SECRETS_MASTER_KEY")
        assert "FABRIC_SIGNING_SECRET" not in line


def test_production_without_smtp_names_the_mail_settings(tmp_path: Path) -> None:
    env = cli_env(
        tmp_path / "data",
        FABRIC_ENV="production",
        FABRIC_SIGNING_SECRET="s" * 32,
        FABRIC_SECRETS_MASTER_KEY="k" * 32,
    )
    line = assert_config_error(
        run_cli("serve", env=env, cwd=tmp_path), "FABRIC_SMTP_HOST", "FABRIC_DEV_OUTBOX=true"
    )
    assert "clear text" in line


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "unused")
    del env["FABRIC_DATA_DIR"]
    read, overridden, invalid = (tmp_path / "read", tmp_path / "overridden", tmp_path / "invalid")
    for directory in (read, overridden):
        directory.mkdir()
        (directory / ".env").write_text(
            "# settings of this deployment\nFABRIC_DATA_DIR=from-dotenv\nFABRIC_LOG_LEVEL=warning\n"
        )
    invalid.mkdir()
    (invalid / ".env").write_text("FABRIC_ENV=prod\n")
    from_env = {**env, "FABRIC_DATA_DIR": str(tmp_path / "from-env")}
    results = run_cli_all(
        [
            (["migrate", "--status"], env, read),
            (["migrate", "--status"], from_env, overridden),
            (["serve"], env, invalid),
        ]
    )
    assert f"{read}/from-dotenv/fabric.db" in results[0].stdout, results[0].stdout
    assert f"{tmp_path}/from-env/fabric.db" in results[1].stdout, results[1].stdout
    assert_config_error(results[2], "FABRIC_ENV")


def test_migrate_status_compares_the_database_with_this_version(
    database_url: str, tmp_path: Path
) -> None:
    env = cli_env(tmp_path / "data", FABRIC_DATABASE_URL=database_url)
    current = run_cli("migrate", "--status", env=env, cwd=tmp_path)
    assert current.returncode == 0, current.stderr
    assert "up to date" in current.stdout
    head = _line(current.stdout, "head")

    asyncio.run(_downgrade(database_url, "0010"))
    behind = run_cli("migrate", "--status", env=env, cwd=tmp_path)
    assert behind.returncode == 1, behind.stderr
    assert _line(behind.stdout, "current") == "0010"
    assert _line(behind.stdout, "head") == head
    pending = [f"{n:04d}" for n in range(11, int(head) + 1)]  # revisions are numbered
    listed = f"{len(pending)} migrations to apply with `fabric-server migrate`: "
    assert listed + ", ".join(pending) in behind.stdout

    migrated = run_cli("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert run_cli("migrate", "--status", env=env, cwd=tmp_path).returncode == 0


def test_migrate_status_of_a_database_not_created_yet(tmp_path: Path) -> None:
    result = run_cli("migrate", "--status", env=cli_env(tmp_path / "data"), cwd=tmp_path)
    assert result.returncode == 1
    assert "none (the database file does not exist yet)" in result.stdout
    assert not (tmp_path / "data").exists()


async def _downgrade(database_url: str, revision: str) -> None:
    db = Database(to_async_url(database_url))
    try:
        await downgrade(db, revision)
    finally:
        await db.dispose()


def _line(output: str, label: str) -> str:
    for line in output.splitlines():
        if line.startswith(f"{label} "):
            return line.removeprefix(label).strip()
    raise AssertionError(f"no {label!r} line in {output!r}")


async def test_backup_copies_sqlite_while_the_server_runs_and_restores(
    database_url: str, tmp_path: Path
) -> None:
    env = cli_env(tmp_path / "data", FABRIC_DATABASE_URL=database_url)
    if not database_url.startswith("sqlite"):
        result = run_cli("backup", str(tmp_path / "copy.db"), env=env, cwd=tmp_path)
        assert "pg_dump" in assert_config_error(result)
        return
    target = tmp_path / "backup.db"
    with LiveServer(fast_settings(database_url, tmp_path / "live")) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as api:
            job = (await api.post("/v1/jobs", json=_job("before the backup"))).json()["data"]
            await wait_for_job(api, job["id"])

            async def keep_writing() -> None:
                for n in range(20):
                    assert (await api.post("/v1/jobs", json=_job(f"during {n}"))).status_code == 201

            writing = asyncio.create_task(keep_writing())
            result = await asyncio.to_thread(run_cli, "backup", str(target), env=env, cwd=tmp_path)
            await writing
    assert result.returncode == 0, result.stderr
    assert f"to {target}" in result.stdout
    again = run_cli("backup", str(target), env=env, cwd=tmp_path)
    assert "exists" in assert_config_error(again)

    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    # Restore: a server started on the copy has everything written before the backup.
    with LiveServer(fast_settings(f"sqlite:///{target}", tmp_path / "restored")) as restored:
        async with httpx.AsyncClient(base_url=restored.base_url, timeout=30) as api:
            found = (await api.get(f"/v1/jobs/{job['id']}")).json()["data"]
    assert (found["status"], found["output"]["text"]) == ("completed", "before the backup")


def _job(prompt: str) -> dict[str, object]:
    return {"modality": "text", "input": {"prompt": prompt}}


def test_a_database_migrated_by_a_newer_version_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    asyncio.run(_set_revision(database_url, "9999"))
    env = cli_env(tmp_path / "data", FABRIC_DATABASE_URL=database_url)
    serve, status = run_cli_all(
        [(["serve"], env, tmp_path), (["migrate", "--status"], env, tmp_path)]
    )
    line = assert_config_error(serve, "FABRIC_DATABASE_URL", "revision 9999", __version__)
    assert "restore a backup" in line
    assert status.returncode == 1, status.stderr
    assert "9999 is unknown" in status.stdout


async def _set_revision(database_url: str, revision: str) -> None:
    db = Database(to_async_url(database_url))
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        await db.dispose()
