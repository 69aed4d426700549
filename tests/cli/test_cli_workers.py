"""``fabric workers``: the code workers registered with the server."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Fabric


@pytest.mark.parametrize("output", ["table", "json", "yaml"])
def test_workers_list_and_get(fabric: Fabric, output: str) -> None:
    body = {"name": f"cli-{output}", "operations": [{"name": "acme.cli", "concurrency": 3}]}
    registered = httpx.post(f"{fabric.base_url}/v1/workers", json=body).json()["data"]
    listed = fabric("-o", output, "workers", "list", "--status", "online")
    assert listed.code == 0, listed.err
    assert f"cli-{output}" in listed.out
    if output == "table":
        assert "acme.cli (3)" in listed.out
    shown = fabric("-o", output, "workers", "get", registered["id"])
    assert shown.code == 0, shown.err
    assert "acme.cli" in shown.out
    assert fabric("workers", "get", "no-such-worker").code == 4
