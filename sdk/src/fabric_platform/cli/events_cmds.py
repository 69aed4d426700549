"""``fabric events tail`` and ``fabric completion``."""

from __future__ import annotations

import json
from typing import Any, Optional, Tuple

import click
from click.shell_completion import get_completion_class

from .._events import EVENTS_PATH, _stream_params
from .app import OUTPUT_OPTION, App, fmt, pass_app

_KEEP_RECONNECTING = 1_000_000


@click.group()
def events() -> None:
    """Live domain events."""


@events.command(
    "tail",
    epilog="\b\nExamples:\n  fabric events tail --kind workflow.run.completed\n"
    "  fabric events tail --run RUN_ID -o json --limit 5",
)
@click.option("--kind", "kinds", multiple=True, help="Only events of this kind.")
@click.option("--run", "run_id", help="Only events of this run (its history first).")
@click.option("--limit", type=int, help="Stop after this many events.")
@OUTPUT_OPTION
@pass_app
def tail(
    app: App,
    kinds: Tuple[str, ...],
    run_id: Optional[str],
    limit: Optional[int],
    output: Optional[str],
) -> None:
    """Print events as they happen; a dropped connection resumes where it stopped."""
    client = app.client()
    if run_id:
        stream = client.stream_run_events(run_id)
    else:
        # A tail outlasts a server restart of any length: it keeps reconnecting (backoff up
        # to 8 s) and resumes after the last event it printed (Last-Event-ID).
        params = _stream_params(False, list(kinds) or None, None)
        stream = client._stream(EVENTS_PATH, params, max_failures=_KEEP_RECONNECTING)
    form = fmt(app, output)
    count = 0
    with stream:
        for event in stream:
            data: Any = dict(event)
            if kinds and data.get("kind") not in kinds:
                continue
            if form == "table":
                parts = [
                    data.get("created_at"),
                    data.get("kind"),
                    data.get("run_id") or data.get("job_id"),
                    data.get("node_key"),
                ]
                click.echo("  ".join(str(p) for p in parts if p))
            else:
                # One JSON document per line either way: stable and streamable.
                click.echo(json.dumps(data, sort_keys=True, default=str))
            count += 1
            if limit is not None and count >= limit:
                break


@click.command(epilog="\b\nExample:\n  fabric completion bash >> ~/.bashrc")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL."""
    root = click.get_current_context().find_root().command
    shell_class = get_completion_class(shell)
    assert shell_class is not None
    script = shell_class(root, {}, "fabric", "_FABRIC_COMPLETE").source()
    click.echo(script, nl=False)


def register(group: click.Group) -> None:
    group.add_command(events)
    group.add_command(completion)
