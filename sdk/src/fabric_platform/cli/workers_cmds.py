"""``fabric workers``: the code workers serving your workflows' operations."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import click

from .app import OUTPUT_OPTION, App, fmt, pass_app
from .output import emit

COLUMNS = ["id", "name", "status", "operations", "tasks_in_flight", "last_seen_at"]


def _row(worker: Any) -> Dict[str, Any]:
    row = dict(worker)
    row["operations"] = ", ".join(
        f"{op['name']} ({op['concurrency']})" for op in row.get("operations") or []
    )
    return row


@click.group()
def workers() -> None:
    """Code workers: which are online, what they serve, how busy they are."""


@workers.command(
    "list",
    epilog="\b\nExamples:\n  fabric workers list --status online\n  fabric workers list -o json",
)
@click.option("--status", type=click.Choice(["online", "stale", "offline"]))
@click.option("--limit", type=int, default=50, show_default=True)
@OUTPUT_OPTION
@pass_app
def workers_list(app: App, status: Optional[str], limit: int, output: Optional[str]) -> None:
    """List code workers, newest first."""
    page: Any = app.client().list_workers(limit, status=status)
    form = fmt(app, output)
    items: List[Any] = page["items"]
    emit([_row(w) for w in items] if form == "table" else items, form, COLUMNS)


@workers.command("get", epilog="\b\nExample:\n  fabric workers get WORKER_ID -o yaml")
@click.argument("worker_id")
@OUTPUT_OPTION
@pass_app
def workers_get(app: App, worker_id: str, output: Optional[str]) -> None:
    """One code worker: operations, status, tasks in flight, last heartbeat."""
    emit(app.client().get_worker(worker_id), fmt(app, output))


def register(group: click.Group) -> None:
    group.add_command(workers)
