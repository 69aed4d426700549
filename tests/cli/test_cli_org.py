"""Schedules, webhooks, usage and audit from the command line, in every output format."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Fabric

FORMATS = ["table", "json", "yaml"]

PIPELINE = """\
name: cli-scheduled
nodes:
  - key: a
    operation: ai.generate
    config:
      prompt_template: "Scheduled"
"""


@pytest.mark.parametrize("output", FORMATS)
def test_schedules_webhooks_usage_and_audit(fabric: Fabric, tmp_path: Path, output: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE)
    assert fabric("workflows", "apply", "-f", str(path)).code == 0
    created = fabric("-o", "json", "schedules", "create", "cli-scheduled", "0 9 * * 1-5")
    assert created.code == 0, created.err
    schedule_id = created.json()["id"]
    for args in (
        ["schedules", "list", "cli-scheduled"],
        ["schedules", "trigger", schedule_id],
        ["schedules", "history", schedule_id],
        ["webhooks", "create", "http://127.0.0.1:9/hook", "-e", "job.completed"],
        ["webhooks", "list"],
        ["usage"],
        ["usage", "--by", "provider"],
        ["usage", "--by", "model"],
        ["audit"],
    ):
        result = fabric("-o", output, *args)
        assert result.code == 0, (args, result.err)
    hooks = fabric("-o", "json", "webhooks", "list").json()
    shown = fabric("-o", output, "webhooks", "deliveries", hooks[0]["id"])
    assert shown.code == 0, shown.err
    audit = fabric("-o", "json", "audit").json()
    assert any("schedule" in entry["action"] for entry in audit)
    chart = fabric("usage")
    assert "#" in chart.out or "No usage" in chart.out
