"""Following a run: a redrawn view of its nodes on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from typing import Any, Dict, List, Optional

import click

from .. import FabricClient
from .output import use_color

FINAL = ("completed", "failed", "cancelled")
SPINNER = "|/-\\"
BAR = 20
COLORS = {"completed": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}


def _node_line(node: Dict[str, Any], tick: int, progress: Optional[Dict[str, Any]]) -> str:
    status = str(node.get("status", "?"))
    key = str(node.get("node_key", "?"))
    if status == "running":
        done, total = 0, 0
        if progress and progress.get("current_task") == key:
            done, total = progress.get("completed_tasks") or 0, progress.get("total_tasks") or 0
        filled = (tick % (BAR + 1)) if not total else int(BAR * done / max(total, 1))
        mark = f"[{'#' * filled}{'.' * (BAR - filled)}]"
    elif status in FINAL:
        mark = "done" if status == "completed" else status
    else:
        mark = SPINNER[tick % len(SPINNER)]
    text = f"  {key:<24} {status:<10} {mark}"
    color = COLORS.get(status)
    return click.style(text, fg=color) if color and use_color() else text


def render(run: Dict[str, Any], tick: int) -> List[str]:
    lines = [f"run {run.get('id')}  {run.get('workflow_name') or ''}  {run.get('status')}"]
    progress = run.get("progress")
    lines += [_node_line(dict(n), tick, progress) for n in run.get("nodes") or []]
    return lines


def follow(client: FabricClient, run_id: str, interval: float = 0.2) -> Dict[str, Any]:
    """Show the run's node states until it ends; return the final run."""
    tty = sys.stdout.isatty()
    drawn = 0
    seen: Dict[str, str] = {}
    last_status = ""
    tick = 0
    while True:
        run: Dict[str, Any] = dict(client.get_run(run_id))
        if tty:
            lines = render(run, tick)
            if drawn:
                sys.stdout.write(f"\x1b[{drawn}F\x1b[J")
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
            drawn = len(lines)
        else:
            for node in run.get("nodes") or []:
                key, status = str(node.get("node_key")), str(node.get("status"))
                if seen.get(key) != status:
                    seen[key] = status
                    click.echo(f"node {key} {status}")
            if run.get("status") != last_status:
                last_status = str(run.get("status"))
                click.echo(f"run {run_id} {last_status}")
        if run.get("status") in FINAL:
            return run
        tick += 1
        time.sleep(interval)
