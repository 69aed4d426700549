"""Workflow size limits: what a template renders (counted while rendering), a node's output
and the run context; each fails the node with a stable code at the start of its error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_llm import FakeLLM
from workflow_helpers import app_client, run_log, run_workflow

from fabric_server.settings import DEFAULT_ORGANIZATION_ID
from fabric_server.testing import fast_settings
from fabric_server.workflows.sizes import Budget, TooLarge, size_within
from fabric_server.workflows.templating import TemplateTooLarge, render_value


def _template_node(template: str) -> list[dict[str, Any]]:
    return [
        {
            "key": "t",
            "operation": "text.transform_basic",
            "config": {"operation": "template", "template": template},
        }
    ]


async def _node_error(client: Any, run: dict[str, Any]) -> str:
    log = await run_log(client, run["id"])
    errors = [n.get("error") for n in log["nodes"] if n.get("error")]
    assert errors, log
    return str(errors[0])


def test_rendering_stops_as_soon_as_it_passes_the_limit() -> None:
    looked_up = 0

    class Counting(dict[str, Any]):
        def __getitem__(self, key: str) -> Any:
            nonlocal looked_up
            looked_up += 1
            return super().__getitem__(key)

        def get(self, key: str, default: Any = None) -> Any:
            nonlocal looked_up
            looked_up += 1
            return super().get(key, default)

    scope = {"context": Counting(big="x" * 10_000), "inputs": {}, "nodes": {}}
    with pytest.raises(TemplateTooLarge, match=r"^template_output_too_large: config\.t "):
        render_value("{{context.big}}" * 200, scope, where="config.t", max_bytes=50_000)
    assert looked_up <= 6  # five fit; the sixth passes the limit, and nothing more is read
    # Whole values kept as they are count too, however often they are referenced.
    many = ["{{context.big}}"] * 200
    with pytest.raises(TemplateTooLarge):
        render_value(many, scope, keep_types=True, where="config.t", max_bytes=50_000)
    assert render_value("{{context.big}}", scope, max_bytes=50_000) == "x" * 10_000


def test_sizes_are_measured_up_to_the_limit_only() -> None:
    assert size_within({"a": [1, "bc"]}, 100) < 100
    with pytest.raises(TooLarge):
        size_within(["x" * 60] * 1_000_000, 1000)  # stops long before walking it all
    budget = Budget(10)
    budget.spend(10)
    with pytest.raises(TooLarge):
        budget.spend(1)


async def test_an_amplifying_template_fails_its_node(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path, workflow_max_rendered_bytes=100_000)
    async with app_client(settings) as (client, _services):
        context = {"big": "x" * 50_000}
        run = await run_workflow(client, _template_node("{{context.big}}" * 200), context)
        assert run["status"] == "failed"
        error = await _node_error(client, run)
        assert error.startswith("template_output_too_large: config.template renders")
        ok = await run_workflow(client, _template_node("{{context.big}}"), context)
        assert ok["status"] == "completed"


async def test_node_outputs_and_the_context_are_limited(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(
        database_url,
        tmp_path,
        workflow_max_node_output_bytes=20_000,
        workflow_max_context_bytes=60_000,
    )
    async with app_client(settings) as (client, _services):
        run = await run_workflow(client, _template_node("{{context.big}}"), {"big": "x" * 30_000})
        assert run["status"] == "failed"
        assert (await _node_error(client, run)).startswith("node_output_too_large: ")
        run = await run_workflow(
            client,
            _template_node("{{context.small}}"),
            {"big": "x" * 55_000, "small": "y" * 10_000},
        )
        assert run["status"] == "failed"
        assert (await _node_error(client, run)).startswith("context_too_large: ")


async def test_a_paid_node_is_limited_and_billed_all_the_same(
    database_url: str, tmp_path: Path, llm: FakeLLM
) -> None:
    settings = fast_settings(
        database_url,
        tmp_path,
        openai_api_key="sk-server-key",
        openai_base_url=llm.openai_base_url,
        provider_retry_base_seconds=0.0,
        workflow_max_node_output_bytes=20_000,
    )
    nodes = [
        {
            "key": "a",
            "operation": "ai.generate",
            "config": {"prompt_template": "{{context.big}}", "model": "gpt-4o"},
        }
    ]
    async with app_client(settings) as (client, _services):
        run = await run_workflow(client, nodes, {"big": "x" * 30_000})
        assert run["status"] == "failed"
        assert (await _node_error(client, run)).startswith("node_output_too_large: ")
        usage = (await client.get(f"/v1/organizations/{DEFAULT_ORGANIZATION_ID}/usage")).json()
        assert usage["data"]["total_cost_usd"] > 0
