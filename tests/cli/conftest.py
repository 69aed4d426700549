"""The ``fabric`` command line run as a subprocess against one real server per module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fabric_platform.cli.main import run
from fabric_server.testing import LiveServer, TestDatabases, fast_settings

PG_URL = os.environ.get("FABRIC_TEST_DATABASE_URL")
DIALECTS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Fabric:
    """Runs ``fabric`` with its own config directory, pointed at the server."""

    base_url: str
    config_dir: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FABRIC_")}
        env.update(
            FABRIC_BASE_URL=self.base_url, FABRIC_CONFIG_DIR=str(self.config_dir), NO_COLOR="1"
        )
        env.update(extra)
        return env

    def __call__(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        """Run the console entry point in this process (fast), with its own env and stdio."""
        runner = CliRunner()
        values: dict[str, str | None] = {k: None for k in os.environ if k.startswith("FABRIC_")}
        values.update(self.env(**env))
        with runner.isolation(input=stdin, env=values) as (out, err, _):
            try:
                run(list(args))
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
            return Result(code, out.getvalue().decode(), err.getvalue().decode())

    def subprocess(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        """Run ``fabric`` as its own process."""
        proc = subprocess.run(
            [sys.executable, "-m", "fabric_platform.cli.main", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(**env),
            timeout=60,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module", params=DIALECTS)
def live(
    request: pytest.FixtureRequest,
    databases: TestDatabases,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    url = databases.create(request.param)
    with LiveServer(fast_settings(url, tmp_path_factory.mktemp("data"))) as server:
        yield server
    databases.drop(url)


@pytest.fixture
def fabric(live: LiveServer, tmp_path: Path) -> Fabric:
    return Fabric(live.base_url, tmp_path / "config")
