"""Schedules, webhooks, usage and audit from the command line, in every output format."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from webhook_receiver import Receiver

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


def test_a_delivery_is_sent_again_from_the_command_line(fabric: Fabric) -> None:
    with Receiver() as receiver:
        hook = fabric("-o", "json", "webhooks", "create", receiver.url, "-e", "job.completed")
        assert hook.code == 0, hook.err
        webhook_id = hook.json()["id"]
        job = fabric(
            "-o",
            "json",
            "jobs",
            "create",
            "--modality",
            "text",
            "--input",
            '{"prompt": "hi"}',
            "--wait",
        )
        assert job.code == 0, job.err
        deadline = time.monotonic() + 20
        while not receiver.requests:
            assert time.monotonic() < deadline, "the delivery never arrived"
            time.sleep(0.02)

        def attempts() -> list[dict[str, object]]:
            shown = fabric("-o", "json", "webhooks", "deliveries", webhook_id)
            assert shown.code == 0, shown.err
            return list(shown.json())

        while [a["status"] for a in attempts()] != ["succeeded"]:
            assert time.monotonic() < deadline, attempts()
            time.sleep(0.05)
        delivery_id = str(attempts()[0]["delivery_id"])
        again = fabric("-o", "json", "webhooks", "redeliver", webhook_id, delivery_id)
        assert again.code == 0, again.err
        assert again.json()["attempt"] == 2
        while len(receiver.requests) < 2:
            assert time.monotonic() < deadline, "the redelivery never arrived"
            time.sleep(0.02)
        missing = fabric(
            "webhooks", "redeliver", webhook_id, "00000000-0000-0000-0000-0000000000ff"
        )
        assert missing.code == 4, missing.err
