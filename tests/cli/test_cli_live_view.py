"""The live view of ``fabric runs start --follow`` in a real terminal (tmux)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import Fabric

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install -y tmux)"
)

PIPELINE = """\
name: cli-live
nodes:
  - key: review
    operation: workflow.approval
  - key: settle
    operation: workflow.delay
    depends_on: [review]
    config:
      seconds: 3
  - key: write_up
    operation: ai.generate
    depends_on: [settle]
    config:
      prompt_template: "Live {{context.topic}}"
"""


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Callable[..., str]]:
    socket = f"fabric-cli-{os.getpid()}-{tmp_path.name}"

    def call(*args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", socket, *args], capture_output=True, text=True, check=True
        ).stdout

    yield call
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)


def wait_screen(tmux: Callable[..., str], wanted: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        screen = tmux("capture-pane", "-p", "-t", "live")
        if wanted in screen:
            return screen
        assert time.monotonic() < deadline, screen
        time.sleep(0.05)


def wait_line(tmux: Callable[..., str], *words: str) -> str:
    """The first screen line holding every one of `words`, once one does."""
    deadline = time.monotonic() + 30
    while True:
        screen = tmux("capture-pane", "-p", "-t", "live")
        for line in screen.splitlines():
            if all(word in line for word in words):
                return line
        assert time.monotonic() < deadline, screen
        time.sleep(0.05)


def test_follow_shows_node_states_and_the_final_run(
    fabric: Fabric, tmp_path: Path, tmux: Callable[..., str]
) -> None:
    path = tmp_path / "live.yaml"
    path.write_text(PIPELINE)
    assert fabric("workflows", "apply", "-f", str(path)).code == 0
    env = fabric.env()
    env.pop("NO_COLOR")
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.startswith("FABRIC_"))
    command = (
        f"env {exports} {shlex.quote(sys.executable)} -m fabric_platform.cli.main"
        " runs start cli-live --context topic=tmux --follow; echo EXIT=$?; sleep 60"
    )
    tmux("new-session", "-d", "-s", "live", "-x", "100", "-y", "30", command)

    waiting = wait_screen(tmux, "review")
    assert "waiting" in wait_screen(tmux, "waiting")
    run_id = waiting.split("run ", 1)[1].split()[0]
    assert fabric("runs", "approve", run_id, "review").code == 0
    # While a node runs, its line carries a progress bar that moves.
    line = wait_line(tmux, "settle", "running")
    assert "[" in line
    assert "]" in line
    bar = line[line.index("[") : line.index("]") + 1]
    assert set(bar[1:-1]) <= {"#", "."}
    assert len(bar) == 22

    screen = wait_screen(tmux, "EXIT=")
    assert "EXIT=0" in screen
    assert "write_up" in screen
    assert "done" in screen
    assert "Live tmux" in screen
    # The view is redrawn in place: the node lines appear once on the final screen.
    assert screen.count("review ") == 1
