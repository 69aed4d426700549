"""Examples shown by ``--help`` for the commands whose definition carries none."""

from __future__ import annotations

from typing import Dict, Iterator, List, Tuple

import click

EXAMPLES: Dict[str, List[str]] = {
    "logout": ["fabric logout", "fabric --profile ci logout -o json"],
    "whoami": ["fabric whoami", "fabric whoami -o json"],
    "orgs list": ["fabric orgs list", "fabric orgs list -o json"],
    "jobs list": ["fabric jobs list --limit 50", "fabric jobs list -o json"],
    "jobs get": ["fabric jobs get JOB_ID", "fabric jobs get JOB_ID -o yaml"],
    "jobs watch": ["fabric jobs watch JOB_ID"],
    "workflows list": ["fabric workflows list", "fabric workflows list -o json"],
    "workflows get": ["fabric workflows get triage", "fabric workflows get triage -o yaml"],
    "runs list": ["fabric runs list --status failed", "fabric runs list --limit 100 -o json"],
    "runs get": ["fabric runs get RUN_ID", "fabric runs get RUN_ID -o json"],
    "runs log": ["fabric runs log RUN_ID", "fabric runs log RUN_ID -o json"],
    "runs watch": ["fabric runs watch RUN_ID"],
    "runs cancel": ["fabric runs cancel RUN_ID --reason 'wrong input'"],
    "runs pause": ["fabric runs pause RUN_ID --reason 'provider outage'"],
    "runs resume": ["fabric runs resume RUN_ID"],
    "keys list": ["fabric keys list", "fabric keys list -o json"],
    "keys rotate": ["fabric keys rotate KEY_ID -o json"],
    "keys disable": ["fabric keys disable KEY_ID"],
    "secrets list": ["fabric secrets list"],
    "schedules list": ["fabric schedules list triage"],
    "schedules trigger": ["fabric schedules trigger SCHEDULE_ID"],
    "schedules history": ["fabric schedules history SCHEDULE_ID --limit 20"],
    "webhooks list": ["fabric webhooks list"],
    "webhooks deliveries": ["fabric webhooks deliveries WEBHOOK_ID -o json"],
    "audit": ["fabric audit --action api_key.rotate", "fabric audit --limit 100 -o json"],
}


def leaves(group: click.Group, prefix: str = "") -> Iterator[Tuple[str, click.Command]]:
    """Every command below `group`, by its full name (``runs approve``)."""
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from leaves(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def add_examples(group: click.Group) -> None:
    """Give each command without an epilog its examples."""
    for name, command in leaves(group):
        lines = EXAMPLES.get(name)
        if lines and not command.epilog:
            command.epilog = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
