"""Running `fabric-server` as a user does: a real process, only the environment given."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from subprocess import PIPE

import httpx

SCRIPT = shutil.which("fabric-server", path=str(Path(sys.executable).parent))


def cli_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """A clean environment: no FABRIC_* variable of the test run leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FABRIC_")}
    env["FABRIC_DATA_DIR"] = str(data_dir)
    env.update(settings)
    return env


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `fabric-server *args` to its end (in `cwd`, where a `.env` file may be read)."""
    assert SCRIPT is not None, "fabric-server is not installed in this environment"
    return subprocess.run(
        [SCRIPT, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_cli_all(
    runs: list[tuple[list[str], dict[str, str], Path]], *, timeout: float = 60
) -> list[subprocess.CompletedProcess[str]]:
    """Like `run_cli` for each `(args, env, cwd)`, the processes running side by side."""
    assert SCRIPT is not None, "fabric-server is not installed in this environment"
    started = [
        (args, subprocess.Popen([SCRIPT, *args], env=env, cwd=cwd, stdout=PIPE, stderr=PIPE))
        for args, env, cwd in runs
    ]
    results = []
    for args, process in started:
        out, err = process.communicate(timeout=timeout)
        results.append(
            subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())
        )
    return results


def start_cli(*args: str, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start `fabric-server *args` in the background, its output going to `log`."""
    assert SCRIPT is not None, "fabric-server is not installed in this environment"
    with log.open("wb") as out:
        return subprocess.Popen([SCRIPT, *args], env=env, cwd=cwd, stdout=out, stderr=out)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Make sure a started process is gone (after a test failed half-way)."""
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll `url` until it answers 200; fail (showing the log) if the process exits first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the process exited early:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within 60 s:\n{log.read_text(errors='replace')}")


def assert_config_error(result: subprocess.CompletedProcess[str], *names: str) -> str:
    """Exit status 2 and one line on stderr naming each of `names`, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("fabric-server"), line
    for name in names:
        assert name in line, (name, line)
    return line
