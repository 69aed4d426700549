"""``fabric runs``: start, follow and control workflow runs."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import click

from .app import EXIT_FAILED, OUTPUT_OPTION, App, fmt, parse_context, parse_json, pass_app
from .live import follow
from .output import emit
from .workflows_cmds import find_by_name

COLUMNS = ["id", "workflow_name", "status", "created_at", "completed_at"]
DETAIL = [*COLUMNS, "output", "error"]


@click.group()
def runs() -> None:
    """Workflow runs."""


def _finish(app: App, run: Dict[str, Any], output: Optional[str]) -> int:
    emit(run, fmt(app, output), DETAIL)
    return EXIT_FAILED if run.get("status") in ("failed", "cancelled") else 0


@runs.command(
    "start",
    epilog="\b\nExamples:\n  fabric runs start my-pipeline --context topic=cats --follow\n"
    "  fabric runs start my-pipeline --context-file ctx.json -o json",
)
@click.argument("name")
@click.option("--context", "pairs", multiple=True, help="key=value (value JSON or text).")
@click.option("--context-file", "files", multiple=True, type=click.Path(exists=True))
@click.option("--follow", "follow_", is_flag=True, help="Show node states until the run ends.")
@OUTPUT_OPTION
@pass_app
def start(
    app: App,
    name: str,
    pairs: Tuple[str, ...],
    files: Tuple[str, ...],
    follow_: bool,
    output: Optional[str],
) -> int:
    """Start a run of the workflow NAME (a name or an id)."""
    client = app.client()
    context = parse_context(pairs, files)
    found = find_by_name(client, name)
    run_id = client.run_workflow(found["id"] if found else name, context)
    if not follow_:
        emit(dict(client.get_run(run_id)), fmt(app, output), DETAIL)
        return 0
    run = (
        follow(client, run_id)
        if fmt(app, output) == "table"
        else dict(client.wait_for_run(run_id, poll_interval=0.2, timeout=None))
    )
    return _finish(app, run, output)


@runs.command("list")
@click.option("--status", help="Only runs in this status.")
@click.option("--limit", type=int, default=20, show_default=True)
@OUTPUT_OPTION
@pass_app
def list_(app: App, status: Optional[str], limit: int, output: Optional[str]) -> None:
    """List recent runs."""
    page: Any = app.client().list_runs(limit=limit, status=status)
    emit(page["items"], fmt(app, output), COLUMNS)


@runs.command("get")
@click.argument("run_id")
@OUTPUT_OPTION
@pass_app
def get(app: App, run_id: str, output: Optional[str]) -> None:
    """Show one run."""
    emit(dict(app.client().get_run(run_id)), fmt(app, output), DETAIL)


@runs.command("log")
@click.argument("run_id")
@OUTPUT_OPTION
@pass_app
def log(app: App, run_id: str, output: Optional[str]) -> None:
    """Show a run's event history."""
    data: Any = app.client().run_log(run_id)
    events = data.get("events") or []
    lines = [
        "  ".join(str(e[k]) for k in ("created_at", "kind", "node_key") if e.get(k)) for e in events
    ]
    emit(data, fmt(app, output), text="\n".join(lines))


@runs.command("watch")
@click.argument("run_id")
@OUTPUT_OPTION
@pass_app
def watch(app: App, run_id: str, output: Optional[str]) -> int:
    """Follow a run until it ends (exit 1 if it failed)."""
    client = app.client()
    run = (
        follow(client, run_id)
        if fmt(app, output) == "table"
        else dict(client.wait_for_run(run_id, poll_interval=0.2, timeout=None))
    )
    return _finish(app, run, output)


@runs.command("cancel")
@click.argument("run_id")
@click.option("--reason")
@OUTPUT_OPTION
@pass_app
def cancel(app: App, run_id: str, reason: Optional[str], output: Optional[str]) -> None:
    """Cancel a run."""
    emit(dict(app.client().cancel_run(run_id, reason=reason)), fmt(app, output), DETAIL)


@runs.command("pause")
@click.argument("run_id")
@click.option("--reason")
@OUTPUT_OPTION
@pass_app
def pause(app: App, run_id: str, reason: Optional[str], output: Optional[str]) -> None:
    """Pause a run."""
    emit(dict(app.client().pause_run(run_id, reason=reason)), fmt(app, output), DETAIL)


@runs.command("resume")
@click.argument("run_id")
@OUTPUT_OPTION
@pass_app
def resume(app: App, run_id: str, output: Optional[str]) -> None:
    """Resume a paused run."""
    emit(dict(app.client().resume_run(run_id)), fmt(app, output), DETAIL)


@runs.command(
    "approve",
    epilog="\b\nExamples:\n  fabric runs approve RUN_ID review\n"
    '  fabric runs approve RUN_ID review --reject --data \'{"why": "off topic"}\'',
)
@click.argument("run_id")
@click.argument("node")
@click.option("--reject", is_flag=True, help="Reject instead of approving.")
@click.option("--data", "data_json", help="Extra JSON object handed to the node.")
@OUTPUT_OPTION
@pass_app
def approve(
    app: App, run_id: str, node: str, reject: bool, data_json: Optional[str], output: Optional[str]
) -> None:
    """Approve (or reject) the waiting NODE of a run."""
    data: Dict[str, Any] = {}
    if data_json:
        parsed = parse_json(data_json, "--data")
        if not isinstance(parsed, dict):
            raise click.UsageError("--data must be a JSON object")
        data.update(parsed)
    data["approved"] = not reject
    result = app.client().resume_node(run_id, node, data=data)
    verb = "Rejected" if reject else "Approved"
    emit(result, fmt(app, output), text=f"{verb} {node} of run {run_id}.")


def register(group: click.Group) -> None:
    group.add_command(runs)
