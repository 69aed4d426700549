"""The dashboard and alert rules in `deploy/` only name metrics a running server exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from metrics_helpers import scrape
from server_helpers import wait_for_job
from webhook_helpers import create_webhook, running_app, settled_attempts, submit_job
from webhook_receiver import Receiver
from workflow_helpers import run_workflow

from fabric_server.settings import ModelPrice, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC = re.compile(r"\bfabric_[a-z0-9_]+\b")


def _exprs(node: Any) -> list[str]:
    """Every `expr` string anywhere in a JSON/YAML document."""
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for value in node.values() for e in _exprs(value)]
    if isinstance(node, list):
        return [e for value in node for e in _exprs(value)]
    return []


def _referenced() -> dict[str, set[str]]:
    dashboard = json.loads((DEPLOY / "grafana" / "fabric-dashboard.json").read_text())
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    names: dict[str, set[str]] = {}
    for source, doc in (("dashboard", dashboard), ("alerts", alerts)):
        for expr in _exprs(doc):
            for name in METRIC.findall(expr):
                names.setdefault(name, set()).add(source)
    return names


def test_the_deploy_files_are_well_formed() -> None:
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    rules = alerts["groups"][0]["rules"]
    assert {"FabricQueueBacklog", "FabricHighErrorRate", "FabricSlowRequests"} <= {
        rule["alert"] for rule in rules
    }
    for rule in rules:
        assert rule["expr"].strip()
        assert rule["annotations"]["summary"]
        assert rule["labels"]["severity"] in ("info", "warning", "critical")
    dashboard = json.loads((DEPLOY / "grafana" / "fabric-dashboard.json").read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert len(_referenced()) >= 20


async def test_every_referenced_metric_is_exposed_after_real_work(settings: Settings) -> None:
    # Priced, so the cost counter moves too.
    priced = settings.model_copy(
        update={"model_prices": {"echo-1": ModelPrice(input=1.0, output=2.0)}}
    )
    async with running_app(priced) as (client, _):
        with Receiver() as receiver:
            hook = await create_webhook(client, receiver.url, events=["job.completed"])
            job_id = await submit_job(client)
            await wait_for_job(client, job_id, "completed")
            await settled_attempts(client, hook["id"], 1)
        run = await run_workflow(client, [{"key": "step", "operation": "workflow.noop"}])
        assert run["status"] == "completed"
        schedules = f"/v1/workflow-definitions/{run['workflow_definition_id']}/schedules"
        schedule = await client.post(schedules, json={"cron_expression": "0 9 * * 1-5"})
        assert schedule.status_code == 201, schedule.text
        fired = await client.post(f"/v1/schedules/{schedule.json()['data']['id']}/trigger")
        assert fired.status_code == 202, fired.text
        exposed = await scrape(client)

    names = exposed.names()
    missing = {name: sorted(where) for name, where in _referenced().items() if name not in names}
    assert not missing, f"named in deploy/ but not exposed: {missing}"
    assert exposed.value("fabric_provider_cost_usd_total") > 0
