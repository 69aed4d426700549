"""Webhook signing secrets at rest: sealed with the master key and bound to their webhook,
never in the database file, events or logs — including secrets stored in clear before
migration 0009, which seals them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import func, select, update
from webhook_helpers import ORG, create_webhook, running_app, settled_attempts
from webhook_receiver import Receiver

from fabric_server.db.database import Database
from fabric_server.db.migrate import downgrade, migrate
from fabric_server.db.types import JSONType, UTCDateTime, new_id, utcnow
from fabric_server.events.models import Event
from fabric_server.secrets.crypto import MasterKey, SecretCipher, SecretUnreadable, derive_key
from fabric_server.services import Services
from fabric_server.settings import to_async_url
from fabric_server.testing import fast_settings
from fabric_server.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from fabric_server.webhooks.sealing import signing_secret

CHOSEN = "whsec_THIS-SIGNING-SECRET-MUST-NEVER-LEAK-4242"
ROTATED = "whsec_THE-ROTATED-SECRET-MUST-NEVER-LEAK-4343"


def scan(directory: Path, pattern: str, *secrets: str) -> dict[str, list[str]]:
    """Each file matching `pattern`, with the secrets found in its bytes."""
    found = {}
    for path in directory.glob(pattern):
        if path.is_file():
            content = path.read_bytes()
            found[str(path)] = [s for s in secrets if s.encode() in content]
    return found


def sqlite_file(database_url: str) -> Path | None:
    return (
        Path(database_url.removeprefix("sqlite:///")) if database_url.startswith("sqlite") else None
    )


async def submit_job(client: httpx.AsyncClient) -> None:
    body = {"modality": "text", "input": {"prompt": "hi"}}
    assert (await client.post("/v1/jobs", json=body)).status_code == 201


async def test_signing_secrets_are_sealed_and_never_leak(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = fast_settings(database_url, tmp_path)
    async with running_app(settings) as (client, services):
        with Receiver() as receiver:
            hook = await create_webhook(client, receiver.url, events=["job.created"], secret=CHOSEN)
            other = await create_webhook(client, receiver.url + "/generated", events=["job.*"])
            generated = other["secret"]
            await submit_job(client)
            await settled_attempts(client, hook["id"], 1)
            rotated = await client.patch(f"/v1/webhooks/{hook['id']}", json={"secret": ROTATED})
            assert rotated.status_code == 200
            assert ROTATED not in rotated.text
            await submit_job(client)
            await settled_attempts(client, hook["id"], 2)
            await settled_attempts(client, other["id"], 6)
        mine = [r for r in receiver.requests if r.path == "/hooks"]
        assert len(mine) == 2
        assert mine[0].verified(CHOSEN)
        assert not mine[0].verified(ROTATED)
        assert mine[1].verified(ROTATED)
        assert not mine[1].verified(CHOSEN)
        assert all(
            r.verified(generated) for r in receiver.requests if r.path.endswith("/generated")
        )

        secrets = (CHOSEN, ROTATED, generated)
        async with services.db.read() as session:
            rows = list(await session.scalars(select(Webhook)))
            events = list(await session.scalars(select(Event)))
            assert len(rows) == 2
            for row in rows:
                assert len(row.secret_nonce) == 12
                assert row.secret_key_id == services.master_key.cipher.key_id
                assert not any(s.encode() in row.secret_ciphertext for s in secrets)
        dumped = json.dumps([e.payload for e in events])
        assert not any(s in dumped for s in secrets)
    db_file = sqlite_file(database_url)
    if db_file is not None:  # closed: the write-ahead log is folded into the file
        found = scan(db_file.parent, db_file.name + "*", *secrets)
        assert found
        assert not any(found.values()), found
    assert not any(s in caplog.text for s in secrets)
    found = scan(tmp_path, "**/*", *secrets)  # the data dir: key file and the rest
    assert not any(found.values()), found


async def test_a_sealed_secret_opens_only_for_its_webhook_and_key(
    client: httpx.AsyncClient, services: Services
) -> None:
    with Receiver() as receiver:
        first = await create_webhook(client, receiver.url + "/first", active=False)
        second = await create_webhook(
            client, receiver.url + "/second", events=["job.created"], max_retries=1
        )
        async with services.db.write() as session:
            row = await session.get(Webhook, first["id"])
            assert row is not None
            await session.execute(
                update(Webhook)
                .where(Webhook.id == second["id"])
                .values(secret_nonce=row.secret_nonce, secret_ciphertext=row.secret_ciphertext)
            )
        await submit_job(client)
        rows = await settled_attempts(client, second["id"], 1)
    assert receiver.requests == []
    assert [r["status"] for r in rows] == ["retrying", "failed"]
    for attempt in rows:
        assert attempt["error"] == (
            f"not sent: the signing secret of webhook {second['id']} does not open "
            "(altered or moved)"
        )
    # The server's fault, not the receiver's: the endpoint stays on.
    assert (await client.get(f"/v1/webhooks/{second['id']}")).json()["data"]["active"]

    async with services.db.read() as session:
        row = await session.get(Webhook, first["id"])
        assert row is not None
        assert signing_secret(row, services.master_key.cipher) == first["secret"]
        with pytest.raises(SecretUnreadable, match="another master key"):
            signing_secret(row, SecretCipher(derive_key("another master key")))


# The webhooks table as revision 0008 left it: the secret in clear.
_WEBHOOKS_0008 = sa.table(
    "webhooks",
    sa.column("id", sa.String),
    sa.column("organization_id", sa.String),
    sa.column("url", sa.String),
    sa.column("event_filter", JSONType),
    sa.column("secret", sa.String),
    sa.column("active", sa.Boolean),
    sa.column("max_retries", sa.Integer),
    sa.column("start_seq", sa.BigInteger),
    sa.column("consecutive_failures", sa.Integer),
    sa.column("created_at", UTCDateTime),
    sa.column("updated_at", UTCDateTime),
)


async def test_a_secret_stored_in_clear_is_sealed_by_the_upgrade_and_still_signs(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path)
    async with running_app(settings):
        pass  # the dev organization and the master key file now exist
    cipher = MasterKey(settings).load()
    webhook_id, delivery_id = new_id(), new_id()
    with Receiver() as receiver:
        db = Database(to_async_url(database_url))
        try:
            await downgrade(db, "0008")
            now = utcnow()
            async with db.engine.begin() as conn:
                start = (await conn.scalar(select(func.max(Event.seq)))) or 0
                await conn.execute(
                    sa.insert(_WEBHOOKS_0008).values(
                        id=webhook_id,
                        organization_id=ORG,
                        url=receiver.url,
                        event_filter=["job.created"],
                        secret=CHOSEN,
                        active=True,
                        max_retries=0,
                        start_seq=start,
                        consecutive_failures=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
                # History from before the upgrade: it must survive the table's rebuild.
                await conn.execute(
                    sa.insert(WebhookDelivery.__table__).values(
                        id=delivery_id,
                        webhook_id=webhook_id,
                        organization_id=ORG,
                        event_id=new_id(),
                        event_seq=start,
                        event_kind="job.completed",
                        body="{}",
                        status="succeeded",
                        attempts=1,
                        created_at=now,
                        updated_at=now,
                        completed_at=now,
                    )
                )
                await conn.execute(
                    sa.insert(WebhookAttempt.__table__).values(
                        id=new_id(),
                        delivery_id=delivery_id,
                        webhook_id=webhook_id,
                        attempt=1,
                        status="succeeded",
                        status_code=200,
                        created_at=now,
                        completed_at=now,
                    )
                )
            with pytest.raises(RuntimeError, match="needs the secrets master key"):
                await migrate(db)  # nothing to seal with: refused, and nothing changed
            async with db.engine.connect() as conn:
                version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
                assert version == "0008"
                assert await conn.scalar(select(_WEBHOOKS_0008.c.secret)) == CHOSEN
        finally:
            await db.dispose()

        async with running_app(settings) as (client, _):  # upgrades with the key
            await submit_job(client)
            rows = await settled_attempts(client, webhook_id, 2)
            assert {r["delivery_id"] for r in rows} >= {delivery_id}
            assert (await client.get(f"/v1/webhooks/{webhook_id}")).status_code == 200
    assert len(receiver.requests) == 1
    assert receiver.requests[0].verified(CHOSEN)
    db_file = sqlite_file(database_url)
    if db_file is not None:
        found = scan(db_file.parent, db_file.name + "*", CHOSEN)
        assert found
        assert not any(found.values()), found

    # Down again, the secret is opened back into the old column; then up once more.
    db = Database(to_async_url(database_url))
    try:
        await downgrade(db, "0008", cipher=cipher)
        async with db.engine.connect() as conn:
            assert await conn.scalar(select(_WEBHOOKS_0008.c.secret)) == CHOSEN
            assert await conn.scalar(select(func.count()).select_from(WebhookAttempt)) == 2
        await migrate(db, cipher=cipher)
        async with db.read() as session:
            row = await session.get(Webhook, webhook_id)
            assert row is not None
            assert signing_secret(row, cipher) == CHOSEN
    finally:
        await db.dispose()
