"""Every command in every output format, exit codes and credentials, against a real server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from fabric_platform.cli.examples import leaves
from fabric_platform.cli.main import cli

from .conftest import Fabric

FORMATS = ["table", "json", "yaml"]

PIPELINE = """\
name: cli-pipeline
description: Summarize a topic
nodes:
  - key: draft
    operation: ai.generate
    config:
      prompt_template: "About {{context.topic}}"
"""


def test_version_help_and_usage_errors(fabric: Fabric) -> None:
    assert fabric.subprocess("--version").out.startswith("fabric, version ")
    piped = fabric.subprocess("jobs", "get", "00000000-0000-0000-0000-000000000000")
    assert piped.code == 4
    assert piped.err.startswith("error: ")
    for args in (["--help"], ["runs", "start", "--help"], ["workflows", "apply", "--help"]):
        result = fabric(*args)
        assert result.code == 0
        assert "Usage: fabric" in result.out
    assert "Examples:" in fabric("runs", "start", "--help").out
    assert fabric("jobs", "create").code == 2
    assert fabric("nosuch").code == 2
    bad = fabric("jobs", "create", "--modality", "text", "--input", "{nope")
    assert bad.code == 2
    assert "--input is not valid JSON" in bad.err


@pytest.mark.parametrize("output", FORMATS)
def test_jobs_in_every_format(fabric: Fabric, output: str) -> None:
    created = fabric(
        "-o",
        output,
        "jobs",
        "create",
        "--modality",
        "text",
        "--input",
        '{"prompt": "Hi"}',
        "--wait",
    )
    assert created.code == 0, created.err
    job_id = fabric("-o", "json", "jobs", "list").json()[0]["id"]
    for args in (["jobs", "list"], ["jobs", "get", job_id], ["jobs", "watch", job_id]):
        result = fabric("-o", output, *args)
        assert result.code == 0, result.err
        assert job_id in result.out
    if output == "json":
        assert fabric("-o", "json", "jobs", "get", job_id).json()["status"] == "completed"
    if output == "yaml":
        assert yaml.safe_load(fabric("-o", "yaml", "jobs", "get", job_id).out)["id"] == job_id


def test_not_found_is_exit_4_with_code_and_request_id(fabric: Fabric) -> None:
    result = fabric("jobs", "get", "00000000-0000-0000-0000-000000000000")
    assert result.code == 4
    line = result.err.strip()
    assert "\n" not in line
    assert line.startswith("error: ")
    assert "code " in line
    assert "request " in line


def test_connection_error_is_exit_5(fabric: Fabric) -> None:
    result = fabric("jobs", "list", FABRIC_BASE_URL="http://127.0.0.1:9")
    assert result.code == 5
    assert result.err.startswith("error: ")


@pytest.mark.parametrize("output", FORMATS)
def test_workflows_apply_is_idempotent(fabric: Fabric, tmp_path: Path, output: str) -> None:
    name = f"cli-{output}"
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE.replace("cli-pipeline", name))
    dry = fabric("-o", "json", "workflows", "apply", "-f", str(path), "--dry-run").json()
    assert dry[0]["action"] == "created"
    assert dry[0]["id"] is None
    assert fabric("-o", "json", "workflows", "list").json() == [] or all(
        w["name"] != name for w in fabric("-o", "json", "workflows", "list").json()
    )
    first = fabric("-o", output, "workflows", "apply", "-f", str(path))
    assert first.code == 0, first.err
    assert "created" in first.out
    again = fabric("-o", "json", "workflows", "apply", "-f", str(path)).json()
    assert again[0]["action"] == "unchanged"
    assert again[0]["diff"] == []

    path.write_text(PIPELINE.replace("cli-pipeline", name).replace("Summarize", "Explain"))
    shown = fabric("workflows", "apply", "-f", str(tmp_path))
    assert shown.code == 0, shown.err
    assert f"{name}: updated" in shown.out
    assert '+  "description": "Explain a topic"' in shown.out

    for args in (["workflows", "list"], ["workflows", "get", name]):
        result = fabric("-o", output, *args)
        assert result.code == 0, result.err
        assert name in result.out
    exported = fabric("workflows", "export", name)
    assert yaml.safe_load(exported.out)["description"] == "Explain a topic"
    as_json = fabric("-o", "json", "workflows", "export", name).json()
    assert as_json == yaml.safe_load(exported.out)
    assert fabric("workflows", "export", name, "--format", "json").json() == as_json


def test_the_sdk_import_does_not_load_the_cli() -> None:
    code = "import sys, fabric_platform; print('fabric_platform.cli' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_command_takes_every_output_format() -> None:
    # `completion` prints a shell script, the one output with a single form.
    missing = []
    for name, command in leaves(cli):
        formats = [
            p for p in command.params if isinstance(p, click.Option) and "--output" in p.opts
        ]
        if name != "completion" and not formats:
            missing.append(name)
    assert not missing, f"commands without --output: {missing}"


@pytest.mark.parametrize("output", ["table", "json", "yaml"])
def test_orgs_in_every_format(fabric: Fabric, output: str) -> None:
    listed = fabric("-o", output, "orgs", "list")
    assert listed.code == 0, listed.err
    org_id = fabric("-o", "json", "orgs", "list").json()[0]["id"]
    assert org_id in listed.out
    used = fabric("-o", output, "orgs", "use", org_id)
    assert used.code == 0, used.err
    assert org_id in used.out


def test_every_command_shows_examples_in_its_help(fabric: Fabric) -> None:
    for name, _ in leaves(cli):
        shown = fabric(*name.split(), "--help")
        assert shown.code == 0, shown.err
        assert "Example" in shown.out, f"fabric {name} --help shows no example"
