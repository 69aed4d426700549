"""``fabric events tail`` outlives its server: across a restart it prints every event once."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from fabric_platform import FabricClient
from fabric_server.testing import LiveServer, TestDatabases, fast_settings, free_port

from .conftest import DIALECTS, Fabric

CLI = [sys.executable, "-m", "fabric_platform.cli.main"]
JOB = {"modality": "text", "input": {"prompt": "p"}}


class Lines:
    """The lines a process prints, read on a thread so that waiting has a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)

    def next(self, timeout: float = 30.0) -> str:
        return self._lines.get(timeout=timeout)


def create_job(base_url: str) -> str:
    with FabricClient(base_url=base_url) as client:
        job_id: str = client.create_job(**JOB)["id"]
        return job_id


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_tail_resumes_after_a_restart_without_losing_or_repeating_events(
    databases: TestDatabases, tmp_path: Path, dialect: str
) -> None:
    url = databases.create(dialect)
    settings = fast_settings(url, tmp_path / "data")
    port = free_port()
    first = LiveServer(settings, port=port).__enter__()
    fabric = Fabric(first.base_url, tmp_path / "config")
    tail = subprocess.Popen(
        [*CLI, "-o", "json", "events", "tail", "--kind", "job.created"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=fabric.env(),
    )
    lines = Lines(tail.stdout)  # type: ignore[arg-type]
    try:
        # The tail is connected once it printed a job: jobs made before that are not its.
        created: list[str] = []
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while not seen:
            assert time.monotonic() < deadline, "the tail never printed an event"
            created.append(create_job(first.base_url))
            try:
                seen.append(json.loads(lines.next(timeout=2))["job_id"])
            except queue.Empty:
                continue
        created = created[created.index(seen[0]) :]
        first.stop()
        # While the tail's server is down, another server on the same database takes jobs.
        with LiveServer(settings) as elsewhere:
            created += [create_job(elsewhere.base_url) for _ in range(2)]
        with LiveServer(settings, port=port) as again:
            created.append(create_job(again.base_url))
            while len(seen) < len(created):
                seen.append(json.loads(lines.next())["job_id"])
            with pytest.raises(queue.Empty):  # and nothing twice
                lines.next(timeout=1)
    finally:
        tail.kill()
        tail.communicate(timeout=30)
        first.stop()
        databases.drop(url)
    assert seen == created
