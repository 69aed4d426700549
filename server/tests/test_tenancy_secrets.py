"""Organization secrets: write-only over HTTP, AES-GCM at rest, never in logs or events."""

from __future__ import annotations

import base64
import json
import logging
import stat
from pathlib import Path

import httpx
import pytest
from auth_helpers import app_client
from server_helpers import assert_error
from sqlalchemy import select, update
from tenancy_helpers import add_member, create_org, data, events_of, verified_user

from fabric_server.events.models import Event
from fabric_server.mail.models import Mail
from fabric_server.secrets.crypto import SecretCipher, SecretUnreadable, derive_key
from fabric_server.secrets.models import OrgSecret
from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID
from fabric_server.testing import fast_settings

PLAINTEXT = "sk-live-THIS-VALUE-MUST-NEVER-LEAK-4242"
SECRETS = f"/v1/organizations/{DEFAULT_ORGANIZATION_ID}/secrets"


async def test_set_list_delete(client: httpx.AsyncClient, services: Services) -> None:
    created = await client.post(SECRETS, json={"name": "OPENAI_API_KEY", "value": "sk-1"})
    first = data(created, 201)
    assert set(first) == {"name", "created_at", "updated_at"}
    replaced = data(await client.post(SECRETS, json={"name": "OPENAI_API_KEY", "value": "sk-2"}))
    assert replaced["created_at"] == first["created_at"]
    assert replaced["updated_at"] > first["updated_at"]
    data(await client.post(SECRETS, json={"name": "A1_B", "value": "x"}), 201)
    assert [s["name"] for s in data(await client.get(SECRETS))] == ["A1_B", "OPENAI_API_KEY"]
    async with services.db.read() as session:
        assert await services.secrets.get(session, DEFAULT_ORGANIZATION_ID, "OPENAI_API_KEY") == (
            "sk-2"
        )
        assert await services.secrets.get(session, DEFAULT_ORGANIZATION_ID, "MISSING") is None
    data(await client.delete(f"{SECRETS}/OPENAI_API_KEY"))
    assert_error(await client.delete(f"{SECRETS}/OPENAI_API_KEY"), 404, "not_found")
    assert [s["name"] for s in data(await client.get(SECRETS))] == ["A1_B"]
    events = await events_of(services, "secret.")
    assert [(e.kind, e.payload["name"]) for e in events] == [
        ("secret.set", "OPENAI_API_KEY"),
        ("secret.set", "OPENAI_API_KEY"),
        ("secret.set", "A1_B"),
        ("secret.deleted", "OPENAI_API_KEY"),
    ]
    assert [e.payload["created"] for e in events[:3]] == [True, False, True]


@pytest.mark.parametrize("name", ["lower", "1ABC", "_X", "A-B", "A B", "A" * 129, ""])
async def test_names_are_validated(client: httpx.AsyncClient, name: str) -> None:
    response = await client.post(SECRETS, json={"name": name, "value": "v"})
    assert_error(response, 400, "validation_failed")
    assert PLAINTEXT not in response.text


async def test_empty_values_are_refused_without_echo(client: httpx.AsyncClient) -> None:
    assert_error(
        await client.post(SECRETS, json={"name": "A", "value": ""}), 400, "validation_failed"
    )
    response = await client.post(SECRETS, json={"name": "A", "value": PLAINTEXT * 2000})
    assert_error(response, 400, "validation_failed")
    assert PLAINTEXT not in response.text


async def test_only_secret_managers_and_only_in_their_organization(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner = await verified_user(client, services, "owner@example.com")
    org = await create_org(client, owner, "acme")
    member = await add_member(client, services, owner, org["id"], "m@example.com", "member")
    path = f"/v1/organizations/{org['id']}/secrets"
    data(await client.post(path, json={"name": "TOKEN", "value": "v"}, headers=owner.headers), 201)
    for response in (
        await client.post(path, json={"name": "TOKEN", "value": "w"}, headers=member.headers),
        await client.get(path, headers=member.headers),
        await client.delete(f"{path}/TOKEN", headers=member.headers),
    ):
        assert_error(response, 403, "forbidden")
    stranger = await verified_user(client, services, "stranger@example.com")
    for response in (
        await client.post(path, json={"name": "TOKEN", "value": "w"}, headers=stranger.headers),
        await client.get(path, headers=stranger.headers),
        await client.delete(f"{path}/TOKEN", headers=stranger.headers),
    ):
        assert_error(response, 404, "not_found")


async def test_values_never_reach_the_database_file_events_or_logs(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = fast_settings(database_url, tmp_path)
    async with app_client(settings) as (client, services):
        data(await client.post(SECRETS, json={"name": "OPENAI_API_KEY", "value": PLAINTEXT}), 201)
        async with services.db.read() as session:
            row = (await session.scalars(select(OrgSecret))).one()
            assert PLAINTEXT.encode() not in row.ciphertext
            assert len(row.nonce) == 12
            events = list(await session.scalars(select(Event)))
            mails = list(await session.scalars(select(Mail)))
            assert await services.secrets.get(
                session, DEFAULT_ORGANIZATION_ID, "OPENAI_API_KEY"
            ) == (PLAINTEXT)
        dumped = json.dumps([e.payload for e in events]) + "".join(m.body for m in mails)
        assert PLAINTEXT not in dumped
        if services.db.is_sqlite:
            db_file = Path(services.db.url.removeprefix("sqlite+aiosqlite:///"))
            scanned = scan(db_file.parent, db_file.name + "*")
            assert any(name.endswith("-wal") for name in scanned)
            assert not any(scanned.values()), scanned
    assert PLAINTEXT not in caplog.text
    scanned = scan(tmp_path, "**/*")  # the data dir: outbox, key files
    assert not any(scanned.values()), scanned


def scan(directory: Path, pattern: str) -> dict[str, bool]:
    """Each file matching `pattern`, and whether its bytes contain the plaintext."""
    return {
        str(path): PLAINTEXT.encode() in path.read_bytes()
        for path in directory.glob(pattern)
        if path.is_file()
    }


async def test_a_moved_or_foreign_ciphertext_does_not_open(
    client: httpx.AsyncClient, services: Services
) -> None:
    data(await client.post(SECRETS, json={"name": "FIRST", "value": "one"}), 201)
    data(await client.post(SECRETS, json={"name": "SECOND", "value": "two"}), 201)
    async with services.db.write() as session:
        first = await session.scalar(select(OrgSecret).where(OrgSecret.name == "FIRST"))
        assert first is not None
        await session.execute(
            update(OrgSecret)
            .where(OrgSecret.name == "SECOND")
            .values(nonce=first.nonce, ciphertext=first.ciphertext)
        )
    async with services.db.read() as session:
        with pytest.raises(SecretUnreadable):
            await services.secrets.get(session, DEFAULT_ORGANIZATION_ID, "SECOND")
        row = await session.scalar(select(OrgSecret).where(OrgSecret.name == "FIRST"))
        assert row is not None
        other = SecretCipher(derive_key("another master key"))
        with pytest.raises(SecretUnreadable):
            other.open(DEFAULT_ORGANIZATION_ID, "FIRST", row.nonce, row.ciphertext, row.key_id)


async def test_dev_mode_keeps_its_generated_key(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path)
    async with app_client(settings) as (client, _):
        data(await client.post(SECRETS, json={"name": "KEPT", "value": "across restarts"}), 201)
    key_file = tmp_path / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(base64.b64decode(key_file.read_text().strip())) == 32
    async with app_client(settings) as (_, services), services.db.read() as session:
        assert await services.secrets.get(session, DEFAULT_ORGANIZATION_ID, "KEPT") == (
            "across restarts"
        )


def test_master_key_forms() -> None:
    raw = bytes(range(32))
    assert derive_key(base64.b64encode(raw).decode()) == raw
    assert derive_key(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
    assert len(derive_key("correct horse battery staple")) == 32
    assert derive_key("k" * 32) != derive_key("k" * 33)
