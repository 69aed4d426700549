"""``fabric jobs``."""

from __future__ import annotations

from typing import Any, Optional

import click

from .app import EXIT_FAILED, OUTPUT_OPTION, App, fmt, parse_json, pass_app
from .output import emit

COLUMNS = ["id", "status", "modality", "created_at"]


@click.group()
def jobs() -> None:
    """Single AI jobs."""


@jobs.command(
    "create",
    epilog='\b\nExample:\n  fabric jobs create --modality text --input \'{"prompt": "Hi"}\' --wait',
)
@click.option("--modality", required=True, help="text, image, ...")
@click.option("--input", "input_json", required=True, help="The job input as JSON.")
@click.option("--wait", is_flag=True, help="Wait for the job to finish; exit 1 if it failed.")
@OUTPUT_OPTION
@pass_app
def create(app: App, modality: str, input_json: str, wait: bool, output: Optional[str]) -> int:
    """Create a job."""
    client = app.client()
    job: Any = client.create_job(modality=modality, input=parse_json(input_json, "--input"))
    if wait:
        job = client.wait_for_job(job["id"], poll_interval=0.2, timeout=None)
    emit(job, fmt(app, output), [*COLUMNS, "output", "error"])
    return EXIT_FAILED if wait and job.get("status") == "failed" else 0


@jobs.command("list")
@click.option("--limit", type=int, default=20, show_default=True)
@OUTPUT_OPTION
@pass_app
def list_(app: App, limit: int, output: Optional[str]) -> None:
    """List recent jobs."""
    page: Any = app.client().list_jobs(limit=limit)
    emit(page["items"], fmt(app, output), COLUMNS)


@jobs.command("get")
@click.argument("job_id")
@OUTPUT_OPTION
@pass_app
def get(app: App, job_id: str, output: Optional[str]) -> None:
    """Show one job."""
    emit(app.client().get_job(job_id), fmt(app, output), [*COLUMNS, "output", "error"])


@jobs.command("watch")
@click.argument("job_id")
@OUTPUT_OPTION
@pass_app
def watch(app: App, job_id: str, output: Optional[str]) -> int:
    """Wait for a job to finish, then show it (exit 1 if it failed)."""
    job: Any = app.client().wait_for_job(job_id, poll_interval=0.2, timeout=None)
    emit(job, fmt(app, output), [*COLUMNS, "output", "error"])
    return EXIT_FAILED if job.get("status") == "failed" else 0


def register(group: click.Group) -> None:
    group.add_command(jobs)
