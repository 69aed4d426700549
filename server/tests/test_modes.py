"""Dev mode is convenient; production mode refuses anonymous callers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from server_helpers import assert_error

from fabric_server.app import create_app
from fabric_server.services import Services, build_services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, Settings
from fabric_server.testing import fast_settings


@pytest.fixture
async def production(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = fast_settings(
        database_url,
        tmp_path,
        env="production",
        signing_secret="s" * 32,
        secrets_master_key="k" * 32,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_production_requires_credentials(production: httpx.AsyncClient) -> None:
    body = assert_error(await production.get("/v1/jobs"), 401, "unauthorized")
    assert "Credentials are required" in body["error"]["message"]
    post = await production.post("/v1/jobs", json={"modality": "text", "input": {"prompt": "x"}})
    assert_error(post, 401, "unauthorized")


async def test_production_ignores_principal_header(production: httpx.AsyncClient) -> None:
    headers = {"x-principal-id": "00000000-0000-0000-0000-000000000001"}
    assert_error(await production.get("/v1/jobs", headers=headers), 401, "unauthorized")


async def test_unknown_bearer_token_is_refused(production: httpx.AsyncClient) -> None:
    headers = {"authorization": "Bearer fab_live_not_a_real_key"}
    assert_error(await production.get("/v1/jobs", headers=headers), 401, "unauthorized")


async def test_health_is_public_in_production(production: httpx.AsyncClient) -> None:
    assert (await production.get("/v1/health")).status_code == 200


async def test_dev_outbox_is_hidden_in_production(production: httpx.AsyncClient) -> None:
    headers = {"authorization": "Bearer whatever"}
    assert (await production.get("/v1/dev/outbox", headers=headers)).status_code in (401, 404)


async def test_dev_mode_seeds_the_default_organization(client: httpx.AsyncClient) -> None:
    job = await client.post("/v1/jobs", json={"modality": "text", "input": {"prompt": "hi"}})
    assert job.json()["data"]["organization_id"] == DEFAULT_ORGANIZATION_ID


async def test_dev_principal_header_must_be_a_uuid(client: httpx.AsyncClient) -> None:
    assert_error(
        await client.get("/v1/jobs", headers={"x-principal-id": "root"}), 401, "unauthorized"
    )


async def test_dev_outbox_lists_sent_mail(client: httpx.AsyncClient, services: Services) -> None:
    async with services.db.write() as session:
        await services.mailer.send(session, "ada@example.com", "Welcome", "Hello Ada")
    mails = (await client.get("/v1/dev/outbox", params={"to": "ada@example.com"})).json()["data"]
    assert [(m["to"], m["subject"], m["body"]) for m in mails] == [
        ("ada@example.com", "Welcome", "Hello Ada")
    ]
    written = list((services.settings.data_dir / "outbox").glob("*.eml"))
    assert len(written) == 1
    assert "Hello Ada" in written[0].read_text()


def test_dev_mode_follows_the_bind_address() -> None:
    assert Settings(host="127.0.0.1").is_dev
    assert not Settings(host="0.0.0.0").is_dev
    assert not Settings(env="production").is_dev
    assert Settings(host="0.0.0.0", dev_mode=True).is_dev
    assert Settings(host="0.0.0.0", dev_mode_on_network=True).is_dev
    assert not Settings(host="0.0.0.0", dev_mode_on_network=True, env="production").is_dev


def test_production_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fabric_server", "serve"],
        env={"FABRIC_ENV": "production", "FABRIC_DATA_DIR": str(tmp_path), "PATH": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "FABRIC_SIGNING_SECRET" in result.stderr
    assert "FABRIC_SECRETS_MASTER_KEY" in result.stderr


def test_services_build_without_side_effects(tmp_path: Path) -> None:
    # Building the app touches neither the database nor the data dir: work starts in lifespan.
    settings = Settings(data_dir=tmp_path / "data")
    create_app(services=build_services(settings))
    assert not (tmp_path / "data").exists()
