"""Rendering results as a table, JSON (stable, for scripts) or YAML."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, List, Mapping, Optional, Sequence

import click
import yaml  # type: ignore[import-untyped]

FORMATS = ("table", "json", "yaml")


def use_color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def is_tty() -> bool:
    return sys.stdout.isatty()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    cells: List[List[str]] = [[c.upper() for c in columns]]
    cells += [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells]
    if use_color():
        lines[0] = click.style(lines[0], bold=True)
    return "\n".join(lines)


def emit(
    data: Any, fmt: str, columns: Optional[Sequence[str]] = None, *, text: Optional[str] = None
) -> None:
    """Print ``data``: JSON and YAML show it whole; a table shows ``columns`` (or ``text``)."""
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    elif fmt == "yaml":
        click.echo(
            yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=True), nl=False
        )
    elif text is not None:
        click.echo(text)
    elif isinstance(data, list):
        click.echo(table(data, columns or _keys(data)))
    elif isinstance(data, Mapping):
        rows = [{"field": k, "value": data[k]} for k in (columns or sorted(data))]
        click.echo(table(rows, ["field", "value"]))
    else:
        click.echo(_cell(data))


def _keys(rows: Sequence[Any]) -> List[str]:
    if rows and isinstance(rows[0], Mapping):
        return sorted(rows[0])[:6]
    return ["value"]
