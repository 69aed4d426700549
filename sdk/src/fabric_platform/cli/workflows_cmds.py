"""``fabric workflows``: apply definitions from files, list, show and export them."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import click
import yaml  # type: ignore[import-untyped]

from .. import FabricClient
from .app import OUTPUT_OPTION, App, fmt, pass_app
from .output import emit

FIELDS = ("name", "description", "nodes", "defaults")
COLUMNS = ["id", "name", "version", "updated_at"]


@click.group()
def workflows() -> None:
    """Workflow definitions."""


def load_definitions(path: Path) -> List[Dict[str, Any]]:
    """The definitions in a YAML/JSON file, or in every such file of a directory."""
    files = (
        sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
        if path.is_dir()
        else [path]
    )
    found: List[Dict[str, Any]] = []
    for file in files:
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise click.UsageError(f"{file}: not valid YAML/JSON: {exc}") from None
        items = data if isinstance(data, list) else [data]
        for item in items:
            if not isinstance(item, dict) or "name" not in item or "nodes" not in item:
                raise click.UsageError(f"{file}: a definition needs 'name' and 'nodes'")
            found.append(item)
    return found


def find_by_name(client: FabricClient, name: str) -> Optional[Dict[str, Any]]:
    for definition in client.list_workflows():
        if definition.get("name") == name or definition.get("id") == name:
            return dict(definition)
    return None


def _comparable(definition: Dict[str, Any]) -> Dict[str, Any]:
    return {k: definition.get(k) for k in FIELDS if definition.get(k) is not None}


def project(current: Any, wanted: Any) -> Any:
    """``current`` seen through the shape of ``wanted``: fields the server fills in by
    default (and the file leaves out) do not count as changes."""
    if isinstance(current, dict) and isinstance(wanted, dict):
        return {k: project(current[k], wanted[k]) for k in wanted if k in current}
    if isinstance(current, list) and isinstance(wanted, list) and len(current) == len(wanted):
        return [project(c, w) for c, w in zip(current, wanted)]
    return current


def diff(current: Optional[Dict[str, Any]], wanted: Dict[str, Any]) -> List[str]:
    seen = project(_comparable(current), _comparable(wanted)) if current else None
    before = json.dumps(seen, indent=2, sort_keys=True) if seen is not None else ""
    after = json.dumps(_comparable(wanted), indent=2, sort_keys=True)
    return list(
        difflib.unified_diff(
            before.splitlines(), after.splitlines(), "current", "file", lineterm=""
        )
    )


@workflows.command(
    "apply",
    epilog="\b\nExamples:\n  fabric workflows apply -f pipeline.yaml\n"
    "  fabric workflows apply -f workflows/ --dry-run",
)
@click.option("-f", "--file", "path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show the diff only; change nothing.")
@OUTPUT_OPTION
@pass_app
def apply(app: App, path: Path, dry_run: bool, output: Optional[str]) -> None:
    """Create or update workflows from YAML/JSON definitions, showing the diff."""
    client = app.client()
    results: List[Dict[str, Any]] = []
    lines: List[str] = []
    for wanted in load_definitions(path):
        current = find_by_name(client, wanted["name"])
        changes = diff(current, wanted)
        action = "created" if current is None else ("updated" if changes else "unchanged")
        workflow_id = current["id"] if current else None
        if changes and not dry_run:
            workflow_id = client.upsert_workflow(
                wanted["name"],
                wanted["nodes"],
                wanted.get("defaults"),
                description=wanted.get("description"),
            )
        results.append(
            {
                "name": wanted["name"],
                "id": workflow_id,
                "action": action,
                "dry_run": dry_run,
                "diff": changes,
            }
        )
        lines.append(f"{wanted['name']}: {action}{' (dry run)' if dry_run else ''}")
        lines.extend(changes)
    emit(results, fmt(app, output), text="\n".join(lines))


@workflows.command("list")
@OUTPUT_OPTION
@pass_app
def list_(app: App, output: Optional[str]) -> None:
    """List workflow definitions."""
    emit([dict(w) for w in app.client().list_workflows()], fmt(app, output), COLUMNS)


def _get(app: App, name: str) -> Dict[str, Any]:
    found = find_by_name(app.client(), name)
    return found if found is not None else dict(app.client().get_workflow(name))


@workflows.command("get")
@click.argument("name")
@OUTPUT_OPTION
@pass_app
def get(app: App, name: str, output: Optional[str]) -> None:
    """Show a workflow definition (by name or id)."""
    emit(_get(app, name), fmt(app, output), [*COLUMNS, "description"])


@workflows.command(
    "export",
    epilog="\b\nExamples:\n  fabric workflows export triage > triage.yaml\n"
    "  fabric -o json workflows export triage > triage.json",
)
@click.argument("name")
@click.option(
    "--format", "form", type=click.Choice(["yaml", "json"]), help="Same as --output (yaml, json)."
)
@OUTPUT_OPTION
@pass_app
def export(app: App, name: str, form: Optional[str], output: Optional[str]) -> None:
    """Print a definition in the form `workflows apply` reads (YAML unless JSON is asked)."""
    data = _comparable(_get(app, name))
    chosen = form or fmt(app, output)
    emit(data, chosen if chosen in ("yaml", "json") else "yaml")


def register(group: click.Group) -> None:
    group.add_command(workflows)
