"""Structured logs of a real server process: JSON lines with their request and work
context, and never a password, token, key or secret value, even at DEBUG."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth_helpers import token_in
from cli_helpers import cli_env, start_cli, stop_process, wait_until_answering
from webhook_receiver import Receiver

from fabric_server.db.database import Database
from fabric_server.mail.outbox import list_outbox
from fabric_server.settings import Settings
from fabric_server.testing import free_port


@pytest.fixture
def processes() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for process in started:
        stop_process(process)


def _poll(client: httpx.Client, path: str, done: set[str], headers: dict[str, str]) -> Any:
    deadline = time.monotonic() + 30
    while True:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        if data["status"] in done:
            return data
        assert time.monotonic() < deadline, data
        time.sleep(0.05)


async def _verification_token(database_url: str, email: str) -> str:
    db = Database(Settings(database_url=database_url).resolved_database_url)
    try:
        async with db.read() as session:
            mails = await list_outbox(session, email, 10)
        return token_in(mails[0].body, "/v1/auth/verify")
    finally:
        await db.dispose()


def test_a_full_flow_logs_json_with_context_and_no_secrets(
    database_url: str, tmp_path: Path, processes: list[Any]
) -> None:
    password = f"correct horse {secrets.token_hex(8)}"
    secret_value = f"plain-secret-value-{secrets.token_hex(8)}"
    signing_secret = secrets.token_urlsafe(40)
    master_key = secrets.token_urlsafe(32)
    metrics_token = secrets.token_urlsafe(24)
    port = free_port()
    env = cli_env(
        tmp_path / "data",
        FABRIC_ENV="production",
        FABRIC_DATABASE_URL=database_url,
        FABRIC_LOG_FORMAT="json",
        FABRIC_LOG_LEVEL="debug",
        FABRIC_SIGNING_SECRET=signing_secret,
        FABRIC_SECRETS_MASTER_KEY=master_key,
        FABRIC_METRICS_TOKEN=metrics_token,
        FABRIC_DEV_OUTBOX="true",
        FABRIC_PUBLIC_URL=f"http://127.0.0.1:{port}",
        FABRIC_WEBHOOK_ALLOW_PRIVATE="true",
        FABRIC_WEBHOOK_ALLOWED_NETWORKS='["127.0.0.0/8"]',
        FABRIC_WORKER_POLL_INTERVAL="0.05",
        FABRIC_ARGON2_TIME_COST="1",
        FABRIC_ARGON2_MEMORY_KIB="8",
        FABRIC_ARGON2_PARALLELISM="1",
    )
    log = tmp_path / "serve.log"
    server = start_cli("serve", "--port", str(port), env=env, cwd=tmp_path, log=log)
    processes.append(server)
    base = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{base}/healthz", server, log)
    revealed: list[str] = [password, secret_value, signing_secret, master_key, metrics_token]

    with httpx.Client(base_url=base, timeout=30) as client, Receiver() as receiver:
        signed_up = client.post(
            "/v1/auth/signup", json={"email": "ops@example.com", "password": password}
        )
        assert signed_up.status_code == 201, signed_up.text
        tokens = signed_up.json()["data"]
        revealed += [tokens["access_token"], tokens["refresh_token"]]
        user = {"authorization": f"Bearer {tokens['access_token']}"}
        verification = asyncio.run(_verification_token(database_url, "ops@example.com"))
        revealed.append(verification)
        verified = client.post("/v1/auth/verify", json={"token": verification}, headers=user)
        assert verified.status_code == 200, verified.text
        login = client.post(
            "/v1/auth/login", json={"email": "ops@example.com", "password": password}
        )
        assert login.status_code == 200, login.text
        revealed += [login.json()["data"]["access_token"], login.json()["data"]["refresh_token"]]
        org_id = client.get("/v1/organizations", headers=user).json()["data"][0]["id"]

        key = client.post(
            "/v1/api-keys", json={"name": "ci", "organization_id": org_id}, headers=user
        )
        assert key.status_code == 201, key.text
        api_key = key.json()["data"]["key"]
        revealed.append(api_key)
        caller = {"authorization": f"Bearer {api_key}"}
        stored = client.post(
            f"/v1/organizations/{org_id}/secrets",
            json={"name": "SERVICE_TOKEN", "value": secret_value},
            headers=user,
        )
        assert stored.status_code == 201, stored.text

        hook = client.post(
            "/v1/webhooks",
            json={"organization_id": org_id, "url": receiver.url, "events": ["job.completed"]},
            headers=caller,
        )
        assert hook.status_code == 201, hook.text
        revealed.append(hook.json()["data"]["secret"])

        job = client.post(
            "/v1/jobs",
            json={"organization_id": org_id, "modality": "text", "input": {"prompt": "hi"}},
            headers=caller,
        )
        assert job.status_code == 201, job.text
        job_id, job_request = job.json()["data"]["id"], job.headers["x-request-id"]
        _poll(client, f"/v1/jobs/{job_id}", {"completed"}, caller)

        definition = client.post(
            "/v1/workflow-definitions",
            json={
                "organization_id": org_id,
                "name": "logged",
                "nodes": [{"key": "step", "operation": "workflow.noop"}],
            },
            headers=caller,
        )
        assert definition.status_code == 201, definition.text
        run = client.post(
            "/v1/workflow-runs",
            json={"workflow_definition_id": definition.json()["data"]["id"]},
            headers=caller,
        )
        assert run.status_code == 201, run.text
        run_id = run.json()["data"]["id"]
        started = client.post(f"/v1/workflow-runs/{run_id}/start", json={}, headers=caller)
        assert started.status_code == 202, started.text
        _poll(client, f"/v1/workflow-runs/{run_id}", {"completed"}, caller)

        deadline = time.monotonic() + 30
        while not receiver.requests:
            assert time.monotonic() < deadline, "the webhook was never delivered"
            time.sleep(0.05)
        scraped = client.get("/metrics", headers={"authorization": f"Bearer {metrics_token}"})
        assert scraped.status_code == 200

    server.send_signal(signal.SIGINT)
    assert server.wait(timeout=60) == 0
    output = log.read_text(errors="replace")

    for value in revealed:
        assert value not in output, f"a secret reached the log: {value[:6]}…"
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line

    access = [line for line in lines if line["logger"] == "fabric_server.access"]
    created = next(line for line in access if line.get("request_id") == job_request)
    assert created["route"] == "/v1/jobs"
    assert created["method"] == "POST"
    assert created["status"] == 201
    assert created["duration_ms"] >= 0
    assert created["principal_id"]
    assert created["organization_id"] == org_id
    assert not [line for line in access if "?" in line["message"]]

    work = [line for line in lines if line.get("work_kind")]
    assert any(line.get("job_id") == job_id for line in work), work
    assert any(line.get("run_id") == run_id for line in work), work
    assert any(line.get("node_id") and line.get("run_id") == run_id for line in work)
    assert any(line.get("work_kind") == "webhook.deliver" for line in work)


async def test_probes_are_logged_quietly_and_user_requests_at_info(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="fabric_server.access"):
        assert (await client.get("/healthz")).status_code == 200
        created = await client.post(
            "/v1/jobs", json={"modality": "text", "input": {"prompt": "hi"}}
        )
        assert created.status_code == 201
    access = [r for r in caplog.records if r.name == "fabric_server.access"]
    probe = next(r for r in access if "/healthz" in r.getMessage())
    assert probe.levelno == logging.DEBUG
    job = next(r for r in access if r.getMessage().startswith("POST /v1/jobs 201"))
    assert job.levelno == logging.INFO
    assert job.fields["status"] == 201  # type: ignore[attr-defined]
