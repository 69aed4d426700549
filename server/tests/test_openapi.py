"""Property-based fuzzing of every route described in /openapi.json (schemathesis).

`/openapi.json` is the contract. Schemathesis runs all its phases against a live server:
explicit examples, the boundary values of every documented constraint (coverage), random
valid and invalid data (fuzzing), and stateful scenarios that follow the documented links
(create → read, change, delete by id). Every check must hold: no 5xx; status, content
type, headers and body as documented; schema-violating requests refused; schema-valid ones
accepted; an exact `Allow` on 405; deleted resources gone; …

`schemathesis.toml` at the repository root sets which statuses may answer a schema-valid
request (its comment says why); `schemathesis run <server>/openapi.json` from the
repository root checks the same things.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.specs.openapi.schemas import OpenApiSchema

from fabric_server.app import create_app
from fabric_server.testing import LiveServer, TestDatabases, fast_settings

CONFIG = Path(__file__).resolve().parents[2] / "schemathesis.toml"
# The run's budget: a few minutes on two cores. Fixed seed: a failure reproduces.
BUDGET: dict[str, Any] = {
    "workers": 1,
    "seed": 7,
    "request-timeout": 30,
    "generation": {"max-examples": 8},
    "phases": {"stateful": {"max-steps": 12}},
}


@pytest.fixture(scope="module")
def api_schema(
    databases: TestDatabases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OpenApiSchema]:
    # One server for the module, as a long-lived deployment: the stateful scenarios meet
    # what the fuzzing created. The dialect follows FABRIC_TEST_DATABASE_URL.
    dialect = "postgresql" if databases.postgres_url else "sqlite"
    url = databases.create(dialect)
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    settings = fast_settings(
        url,
        data_dir,
        sse_max_connection_seconds=1.0,
        # Runs of fuzzed code-worker operations end instead of waiting for a worker forever
        # (a request waiting on one would outlast the request timeout).
        worker_schedule_to_start_seconds=1.0,
    )
    with LiveServer(settings) as server:
        options = tomllib.loads(CONFIG.read_text())
        for name, value in BUDGET.items():  # the budget adds to the file's sections
            if isinstance(value, dict):
                options[name] = {**options.get(name, {}), **value}
            else:
                options[name] = value
        config = SchemathesisConfig.from_dict(options)
        # The document is built once, on first request; on a busy machine that first build
        # can outlast the loader's own timeout.
        httpx.get(f"{server.base_url}/openapi.json", timeout=120).raise_for_status()
        yield schemathesis.openapi.from_url(f"{server.base_url}/openapi.json", config=config)
    databases.drop(url)


# Every operation through every phase: longer than the suite's per-test limit.
@pytest.mark.timeout(900)
# Describing a large generated body is only slow, not wrong.
@pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)
def test_every_operation_keeps_the_documented_contract(api_schema: OpenApiSchema) -> None:
    failures: list[str] = []
    errors: list[str] = []
    phases: dict[str, str] = {}
    for event in from_schema(api_schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            failures.extend(_failures(event.recorder))
        elif isinstance(event, events.PhaseFinished):
            phases[event.phase.name.value] = event.status.name
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(f"{getattr(event, 'label', '')}: {event.info}")
    assert not errors, "\n".join(errors)
    assert not failures, f"{len(failures)} check failures:\n" + "\n".join(sorted(set(failures)))
    # Each phase ran: nothing was skipped for lack of links or data.
    assert {"examples", "coverage", "fuzzing", "stateful"} <= set(phases), phases


def _failures(recorder: Any) -> list[str]:
    found = []
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.status == Status.FAILURE:
                info = check.failure_info
                title = info.failure.title if info is not None else ""
                exchange = recorder.interactions.get(case_id)
                seen = ""
                if exchange is not None:
                    sent, answer = exchange.request, exchange.response
                    seen = f"\n  {sent.method} {sent.uri[:300]} {str(sent.body)[:300]}"
                    if answer is not None:
                        seen += (
                            f"\n  -> {answer.status_code} {answer.headers} {answer.content!r:.300}"
                        )
                found.append(f"{recorder.label}: {check.name} ({title}){seen}")
    return found


def test_links_tie_creates_to_the_operations_on_what_they_create(tmp_path: Path) -> None:
    # The document as the server publishes it (a fuzz run rewrites its own copy's links).
    document = create_app(fast_settings(f"sqlite:///{tmp_path}/unused.db", tmp_path)).openapi()
    created_job = document["paths"]["/v1/jobs"]["post"]["responses"]["201"]["links"]
    targets = {link["operationId"] for link in created_job.values()}
    assert document["paths"]["/v1/jobs/{job_id}"]["get"]["operationId"] in targets
    linked = {
        link.get("operationId")
        for item in document["paths"].values()
        for operation in item.values()
        for response in operation.get("responses", {}).values()
        for link in response.get("links", {}).values()
    }
    assert len(linked - {None}) >= 40
