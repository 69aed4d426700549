"""Runs from the command line: start, follow, approve from a second command, control."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Fabric

APPROVAL = """\
name: cli-approval
nodes:
  - key: gate
    operation: workflow.approval
  - key: draft
    operation: ai.generate
    depends_on: [gate]
    config:
      prompt_template: "About {{context.topic}}"
"""


def wait_status(fabric: Fabric, run_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        run = fabric("-o", "json", "runs", "get", run_id).json()
        if run["status"] == status:
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.05)


@pytest.fixture
def approval(fabric: Fabric, tmp_path: Path) -> str:
    path = tmp_path / "approval.yaml"
    path.write_text(APPROVAL)
    assert fabric("workflows", "apply", "-f", str(path)).code == 0
    return "cli-approval"


def test_follow_a_run_approved_from_a_second_command(
    fabric: Fabric, approval: str, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx.json"
    ctx.write_text('{"audience": "kids"}')
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fabric_platform.cli.main",
            "runs",
            "start",
            approval,
            "--context",
            "topic=cats",
            "--context-file",
            str(ctx),
            "--follow",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=fabric.env(),
    )
    try:
        # The follower prints a line per change: approve once it has shown the run waiting.
        assert follower.stdout is not None
        seen: list[str] = []
        while not (seen and seen[-1].startswith("run ") and seen[-1].endswith(" waiting")):
            line = follower.stdout.readline()
            assert line, (seen, follower.stderr.read() if follower.stderr else "")
            seen.append(line.rstrip("\n"))
        run_id = seen[-1].split()[1]
        waiting = fabric("-o", "json", "runs", "get", run_id).json()
        assert waiting["context"]["topic"] == "cats"
        assert waiting["context"]["audience"] == "kids"
        approved = fabric("runs", "approve", run_id, "gate", "--data", '{"note": "ok"}')
        assert approved.code == 0, approved.err
        assert approved.out.strip() == f"Approved gate of run {run_id}."
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == 0, err
    lines = seen + out.splitlines()
    # Piped output: one plain line per change, no escape sequences.
    assert "\x1b" not in out
    assert f"run {run_id} waiting" in lines
    assert "node gate completed" in lines
    assert "node draft completed" in lines
    assert f"run {run_id} completed" in lines
    assert lines.index("node gate completed") < lines.index(f"run {run_id} completed")
    assert "About cats" in out


@pytest.mark.parametrize("output", ["table", "json", "yaml"])
def test_run_controls_in_every_format(fabric: Fabric, approval: str, output: str) -> None:
    started = fabric("-o", "json", "runs", "start", approval, "--context", "topic=dogs")
    assert started.code == 0, started.err
    run_id = started.json()["id"]
    wait_status(fabric, run_id, "waiting")
    for args in (["runs", "list"], ["runs", "get", run_id], ["runs", "log", run_id]):
        result = fabric("-o", output, *args)
        assert result.code == 0, result.err
        assert result.out.strip()
    paused = fabric("-o", output, "runs", "pause", run_id)
    assert paused.code == 0, paused.err
    resumed = fabric("-o", output, "runs", "resume", run_id)
    assert resumed.code == 0, resumed.err
    rejected = fabric("-o", output, "runs", "approve", run_id, "gate", "--reject")
    assert rejected.code == 0, rejected.err
    final = fabric("-o", output, "runs", "watch", run_id)
    assert final.code in (0, 1), final.err


def test_cancel_and_exit_1_when_followed_run_ends_badly(fabric: Fabric, approval: str) -> None:
    run_id = fabric("-o", "json", "runs", "start", approval).json()["id"]
    wait_status(fabric, run_id, "waiting")
    cancelled = fabric("-o", "json", "runs", "cancel", run_id, "--reason", "no")
    assert cancelled.code == 0, cancelled.err
    assert fabric("runs", "watch", run_id).code == 1
    assert fabric("runs", "get", "00000000-0000-0000-0000-000000000000").code == 4
