"""Rotating the secrets master key: previous keys keep opening what they sealed, and
`fabric-server rotate-secrets` re-seals everything under the current key — in batches,
idempotently, refusing when a value is sealed with a key it does not have."""

from __future__ import annotations

import asyncio
import base64
import contextvars
import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fake_llm import FakeLLM
from server_helpers import eventually
from sqlalchemy import select, text, update
from webhook_helpers import ORG, create_webhook, running_app, settled_attempts, submit_job
from webhook_receiver import Receiver

from fabric_server.cli import main
from fabric_server.db.database import Database
from fabric_server.secrets.crypto import (
    MasterKey,
    SecretCipher,
    SecretUnreadable,
    derive_key,
    key_id,
    load_previous_keys,
)
from fabric_server.secrets.models import OrgSecret
from fabric_server.secrets.rotation import KeyRotation
from fabric_server.settings import Settings, to_async_url
from fabric_server.testing import fast_settings
from fabric_server.webhooks.models import Webhook

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.urlsafe_b64encode(bytes(range(100, 132))).decode().rstrip("=")
KEY_C = "an unrelated passphrase: never configured again"
OPENAI_KEY = "sk-org-ROTATION-VALUE-MUST-NEVER-LEAK-4242"
OTHER_VALUE = "another-ROTATION-VALUE-MUST-NEVER-LEAK-4343"
SIGNING = "whsec_ROTATION-SIGNING-SECRET-MUST-NEVER-LEAK-4444"
VALUES = (OPENAI_KEY, OTHER_VALUE, SIGNING)
SECRETS = f"/v1/organizations/{ORG}/secrets"


def kid(raw: str) -> str:
    return key_id(derive_key(raw))


def keyed(
    database_url: str, tmp_path: Path, current: str, *previous: str, **extra: object
) -> Settings:
    return fast_settings(
        database_url,
        tmp_path,
        secrets_master_key=current,
        secrets_previous_master_keys=",".join(previous) or None,
        **extra,
    )


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


class RotateSecrets:
    """`fabric-server rotate-secrets <args>` through the real entry point, configured by the
    environment like a deployment; run in a thread so an app in this loop keeps serving."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self.monkeypatch = monkeypatch
        self.capsys = capsys

    async def __call__(
        self, database_url: str, data_dir: Path, current: str, *args: str, previous: str = ""
    ) -> Run:
        for name, value in (
            ("FABRIC_DATABASE_URL", database_url),
            ("FABRIC_DATA_DIR", str(data_dir)),
            ("FABRIC_SECRETS_MASTER_KEY", current),
            ("FABRIC_SECRETS_PREVIOUS_MASTER_KEYS", previous),
        ):
            self.monkeypatch.setenv(name, value)
        self.capsys.readouterr()
        code = await asyncio.to_thread(main, ["rotate-secrets", *args])
        captured = self.capsys.readouterr()
        for value in VALUES:
            assert value not in captured.out + captured.err
        return Run(code, captured.out, captured.err)


@pytest.fixture
def rotate(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> RotateSecrets:
    return RotateSecrets(monkeypatch, capsys)


@dataclass(frozen=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes
    updated_at: dt.datetime


async def sealed_rows(database_url: str) -> dict[str, Sealed]:
    """Every sealed value in the database, by secret name or webhook id."""
    db = Database(to_async_url(database_url))
    try:
        async with db.read() as session:
            rows = {
                s.name: Sealed(s.key_id, s.nonce, s.ciphertext, s.updated_at)
                for s in await session.scalars(select(OrgSecret))
            }
            for w in await session.scalars(select(Webhook)):
                rows[w.id] = Sealed(
                    w.secret_key_id, w.secret_nonce, w.secret_ciphertext, w.updated_at
                )
    finally:
        await db.dispose()
    return rows


async def set_secret(client: httpx.AsyncClient, name: str, value: str) -> None:
    response = await client.post(SECRETS, json={"name": name, "value": value})
    assert response.status_code in (200, 201), response.text


async def provider_key(client: httpx.AsyncClient, llm: FakeLLM) -> str:
    """The API key an OpenAI call of the default organization sends (its own secret)."""
    body = {"modality": "text", "input": {"prompt": "Hello"}, "model": "gpt-4o"}
    response = await client.post("/v1/providers/execute", json=body)
    assert response.status_code == 200, response.text
    return llm.requests[-1].headers["authorization"].removeprefix("Bearer ")


async def test_rotation_moves_every_value_to_the_new_key_without_losing_one(
    database_url: str,
    tmp_path: Path,
    llm: FakeLLM,
    rotate: RotateSecrets,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    def settings(current: str, *previous: str) -> Settings:
        return keyed(
            database_url,
            tmp_path,
            current,
            *previous,
            openai_base_url=llm.openai_base_url,
            provider_retry_base_seconds=0.0,
        )

    with Receiver() as receiver:
        async with running_app(settings(KEY_A)) as (client, _):
            await set_secret(client, "OPENAI_API_KEY", OPENAI_KEY)
            await set_secret(client, "OTHER", OTHER_VALUE)
            hook = await create_webhook(
                client, receiver.url, events=["job.created"], secret=SIGNING
            )
        assert {row.key_id for row in (await sealed_rows(database_url)).values()} == {kid(KEY_A)}

        # Deployed with the new key, the old one previous: everything still opens.
        async with running_app(settings(KEY_B, KEY_A)) as (client, services):
            assert await provider_key(client, llm) == OPENAI_KEY
            await submit_job(client)
            await settled_attempts(client, hook["id"], 1)
            before = await sealed_rows(database_url)

            # Rotated while the server runs, one row per transaction.
            run = await rotate(database_url, tmp_path, KEY_B, "--batch-size", "1", previous=KEY_A)
            assert run.code == 0, run.err
            assert "organization secrets: 1 re-sealed in this batch, 2 so far" in run.out
            assert "organization secrets: 2 re-sealed\n" in run.out
            assert "webhook signing secrets: 1 re-sealed\n" in run.out
            after = await sealed_rows(database_url)
            assert set(after) == set(before) == {"OPENAI_API_KEY", "OTHER", hook["id"]}
            for name, row in after.items():
                assert row.key_id == kid(KEY_B)
                assert row.ciphertext != before[name].ciphertext
                assert row.updated_at == before[name].updated_at  # the value did not change
            async with services.db.read() as session:
                assert await services.secrets.get(session, ORG, "OTHER") == OTHER_VALUE

        # The old key gone: still nothing lost.
        async with running_app(settings(KEY_B)) as (client, services):
            assert await provider_key(client, llm) == OPENAI_KEY
            async with services.db.read() as session:
                assert await services.secrets.get(session, ORG, "OTHER") == OTHER_VALUE
            await submit_job(client)
            await settled_attempts(client, hook["id"], 2)

            again = await rotate(database_url, tmp_path, KEY_B)
            assert again.code == 0, again.err
            assert "organization secrets: 0 re-sealed" in again.out
            assert "webhook signing secrets: 0 re-sealed" in again.out
            assert await sealed_rows(database_url) == after  # a second run touches nothing

            check = await rotate(database_url, tmp_path, KEY_B, "--check")
            assert check.code == 0
            assert "every value is sealed with the current key" in check.out
            assert f"{kid(KEY_B)}  current" in check.out

    deliveries = [r for r in receiver.requests if r.path == "/hooks"]
    assert len(deliveries) == 2
    assert all(r.verified(SIGNING) for r in deliveries)
    assert not any(value in caplog.text for value in VALUES)


async def test_a_value_under_an_unknown_key_stops_the_rotation_before_any_change(
    database_url: str, tmp_path: Path, rotate: RotateSecrets
) -> None:
    async with running_app(keyed(database_url, tmp_path, KEY_A)) as (client, _):
        await set_secret(client, "KNOWN", OPENAI_KEY)
        hook = await create_webhook(client, "http://127.0.0.1:9/hooks", active=False)
    async with running_app(keyed(database_url, tmp_path, KEY_C)) as (client, _):
        await set_secret(client, "STRAY", OTHER_VALUE)
    before = await sealed_rows(database_url)

    run = await rotate(database_url, tmp_path, KEY_B, previous=KEY_A)
    assert run.code == 1
    assert "refusing to rotate, nothing was changed: 1 value is sealed with a master key" in (
        run.err
    )
    assert f"organization secrets: 1 under key {kid(KEY_C)}" in run.err
    assert f"organization {ORG}, secret STRAY" in run.err
    assert "KNOWN" not in run.err
    assert await sealed_rows(database_url) == before

    check = await rotate(database_url, tmp_path, KEY_B, "--check", previous=KEY_A)
    assert check.code == 1
    lines = [line.split() for line in check.out.splitlines()]
    assert [kid(KEY_B), "current", "0", "0"] in lines
    assert [kid(KEY_A), "previous", "1", "1"] in lines
    assert [kid(KEY_C), "unknown", "1", "0"] in lines
    assert "2 values to re-seal with `fabric-server rotate-secrets`" in check.out
    assert "1 value sealed with an unknown master key (cannot be opened)" in check.out
    assert await sealed_rows(database_url) == before

    # With the stray key among the previous ones, everything moves.
    fixed = await rotate(database_url, tmp_path, KEY_B, previous=f"{KEY_A}, {KEY_C}")
    assert fixed.code == 0, fixed.err
    after = await sealed_rows(database_url)
    assert {row.key_id for row in after.values()} == {kid(KEY_B)}
    cipher = SecretCipher(derive_key(KEY_B))
    stray = after["STRAY"]
    assert cipher.open(ORG, "STRAY", stray.nonce, stray.ciphertext, stray.key_id) == OTHER_VALUE
    assert set(after) == {"KNOWN", "STRAY", hook["id"]}


async def test_a_value_that_does_not_open_is_reported_and_the_others_rotated(
    database_url: str, tmp_path: Path, rotate: RotateSecrets
) -> None:
    async with running_app(keyed(database_url, tmp_path, KEY_A)) as (client, services):
        await set_secret(client, "FIRST", OPENAI_KEY)
        await set_secret(client, "SECOND", OTHER_VALUE)
        await set_secret(client, "THIRD", OTHER_VALUE)
        async with services.db.write() as session:  # SECOND now holds FIRST's ciphertext
            first = await session.scalar(select(OrgSecret).where(OrgSecret.name == "FIRST"))
            assert first is not None
            await session.execute(
                update(OrgSecret)
                .where(OrgSecret.name == "SECOND")
                .values(nonce=first.nonce, ciphertext=first.ciphertext)
            )

    run = await rotate(database_url, tmp_path, KEY_B, "--batch-size", "2", previous=KEY_A)
    assert run.code == 1
    assert "organization secrets: 2 re-sealed\n" in run.out
    assert "1 value did not open (altered, or copied from another row); left unchanged:\n" in (
        run.err
    )
    assert f"organization {ORG}, secret SECOND" in run.err
    rows = await sealed_rows(database_url)
    assert {name: row.key_id for name, row in rows.items()} == {
        "FIRST": kid(KEY_B),
        "SECOND": kid(KEY_A),
        "THIRD": kid(KEY_B),
    }


async def test_a_value_set_while_its_row_is_rotated_is_kept(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("another process's row lock: PostgreSQL (SQLite has one writer at a time)")
    async with running_app(keyed(database_url, tmp_path, KEY_A)) as (client, _):
        await set_secret(client, "KEEP", OPENAI_KEY)
        await set_secret(client, "OTHER", OTHER_VALUE)
    async with running_app(keyed(database_url, tmp_path, KEY_B, KEY_A)) as (_, services):
        cipher = services.master_key.cipher
        rotation = KeyRotation(services.db, cipher, services.sealed_tables, batch_size=10)

        async def waiting_for_locks() -> int:
            async with services.db.read() as session:
                query = text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                return int(await session.scalar(query) or 0)

        async with services.db.write() as session:  # a new value, set by another request
            row = await session.scalar(
                select(OrgSecret).where(OrgSecret.name == "OTHER").with_for_update()
            )
            assert row is not None
            row.nonce, row.ciphertext = cipher.seal(ORG, "OTHER", "set during the rotation")
            row.key_id = cipher.key_id
            await session.flush()
            # Outside this transaction's context: a process of its own.
            rotating = asyncio.create_task(rotation.rotate(), context=contextvars.Context())
            await eventually(waiting_for_locks, lambda waiting: waiting > 0)
        report = await rotating
        assert report.resealed["organization secrets"] == 1
        async with services.db.read() as session:
            assert await services.secrets.get(session, ORG, "KEEP") == OPENAI_KEY
            assert await services.secrets.get(session, ORG, "OTHER") == "set during the rotation"


def test_previous_keys_open_but_never_seal() -> None:
    old, new = derive_key(KEY_A), derive_key(KEY_B)
    sealed_by_old = SecretCipher(old)
    nonce, ciphertext = sealed_by_old.seal(ORG, "NAME", "value")

    ring = SecretCipher(new, [old, old, new])
    assert ring.key_id == kid(KEY_B)
    assert ring.previous_key_ids == {kid(KEY_A)}
    assert [ring.opens(kid(key)) for key in (KEY_A, KEY_B, KEY_C)] == [True, True, False]
    assert ring.open(ORG, "NAME", nonce, ciphertext, kid(KEY_A)) == "value"
    with pytest.raises(SecretUnreadable, match="does not open"):
        ring.open(ORG, "OTHER", nonce, ciphertext, kid(KEY_A))  # bound to its row still
    resealed = ring.seal(ORG, "NAME", "value")
    assert SecretCipher(new).open(ORG, "NAME", *resealed, kid(KEY_B)) == "value"
    with pytest.raises(SecretUnreadable, match="another master key"):
        SecretCipher(new).open(ORG, "NAME", nonce, ciphertext, kid(KEY_A))


def test_previous_keys_setting(tmp_path: Path) -> None:
    assert load_previous_keys(Settings(data_dir=tmp_path)) == []
    assert load_previous_keys(Settings(data_dir=tmp_path, secrets_previous_master_keys="")) == []
    listed = Settings(data_dir=tmp_path, secrets_previous_master_keys=f" {KEY_A} ,, {KEY_C},")
    assert load_previous_keys(listed) == [derive_key(KEY_A), derive_key(KEY_C)]
    assert KEY_A not in repr(listed)
    # A passphrase with a comma cannot be listed; its derived key in base64 stands for it.
    passphrase = "old, with a comma"
    derived = base64.b64encode(hashlib.sha256(passphrase.encode()).digest()).decode()
    both = Settings(data_dir=tmp_path, secrets_previous_master_keys=f"{KEY_A},{derived}")
    assert load_previous_keys(both)[1] == derive_key(passphrase)


def test_dev_mode_generates_its_key_and_still_opens_previous_ones(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secrets_previous_master_keys=KEY_A)
    assert settings.is_dev
    cipher = MasterKey(settings).load()
    generated = (tmp_path / "secrets.key").read_text().strip()
    assert cipher.key_id == kid(generated)
    assert cipher.previous_key_ids == {kid(KEY_A)}
    nonce, ciphertext = SecretCipher(derive_key(KEY_A)).seal(ORG, "NAME", "value")
    assert cipher.open(ORG, "NAME", nonce, ciphertext, kid(KEY_A)) == "value"
