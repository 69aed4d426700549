"""Mail over SMTP (to a small SMTP server on loopback), links, and secrets kept out of logs."""

from __future__ import annotations

import asyncio
import email
import logging
from collections.abc import AsyncIterator
from email.message import Message
from pathlib import Path

import httpx
import pytest
from auth_helpers import app_client, login, outbox, signup, token_in
from server_helpers import eventually

from fabric_server.auth.module import build_auth
from fabric_server.db.database import Database
from fabric_server.events.outbox import EventRecorder
from fabric_server.mail import build_mailer
from fabric_server.orgs.personal import PersonalOrganizations
from fabric_server.settings import Settings
from fabric_server.testing import fast_settings, free_port


class MiniSmtp:
    """Just enough SMTP to receive mail: greeting, EHLO, MAIL, RCPT, DATA, QUIT."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Message] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mini ESMTP\r\n")
        data: list[bytes] | None = None
        while line := await reader.readline():
            if data is not None:
                if line == b".\r\n":
                    self.messages.append(email.message_from_bytes(b"".join(data)))
                    data = None
                    writer.write(b"250 queued\r\n")
                else:
                    data.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-mini\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                data = []
                writer.write(b"354 go on\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()


@pytest.fixture
async def smtp() -> AsyncIterator[MiniSmtp]:
    server = MiniSmtp()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", server.port)
    async with listener:
        yield server


def smtp_settings(database_url: str, tmp_path: Path, port: int) -> Settings:
    return fast_settings(
        database_url,
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_from="Fabric <fabric@example.com>",
        public_url="https://fabric.example.com",
    )


async def test_mail_goes_over_smtp_when_configured(
    database_url: str, tmp_path: Path, smtp: MiniSmtp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="fabric_server")
    settings = smtp_settings(database_url, tmp_path, smtp.port)
    async with app_client(settings) as (client, services):
        tokens = await signup(client, "smtp@example.com")
        await client.post("/v1/auth/forgot-password", json={"email": "smtp@example.com"})
        await services.mailer.aclose()  # wait for deliveries in flight
        assert await outbox(services, "smtp@example.com") == []  # not the dev outbox
    # Each mail is delivered by its own task: their order on the wire is not fixed.
    assert sorted(m["Subject"] for m in smtp.messages) == [
        "Confirm your email address",
        "Reset your Fabric password",
    ]
    first = next(m for m in smtp.messages if m["Subject"] == "Confirm your email address")
    assert first["To"] == "smtp@example.com"
    assert first["From"] == "Fabric <fabric@example.com>"
    body = first.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    assert "https://fabric.example.com/v1/auth/verify?token=" in text
    token = token_in(text, "/v1/auth/verify")
    logged = caplog.text
    for secret in (token, tokens["access_token"], tokens["refresh_token"], "password123"):
        assert secret not in logged
    assert "smtp@example.com" in logged  # deliveries are logged, without their bodies


async def test_smtp_failure_does_not_fail_the_request(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = smtp_settings(database_url, tmp_path, free_port())  # nobody listens there
    async with app_client(settings) as (client, services):
        await signup(client, "down@example.com")

        async def log_text() -> str:
            return caplog.text

        await eventually(log_text, lambda text: "was not delivered" in text)
        await services.mailer.aclose()
        assert (await login(client, "down@example.com")).status_code == 200


async def test_links_can_point_at_a_web_app(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path, auth_link_url="https://app.example.com/auth")
    async with app_client(settings) as (client, services):
        await signup(client, "app@example.com")
        await client.post("/v1/auth/magic-link", json={"email": "app@example.com"})
        bodies = [m["body"] for m in await outbox(services, "app@example.com")]
    assert any("https://app.example.com/auth/verify?token=" in b for b in bodies)
    assert any("https://app.example.com/auth/magic-link/verify?token=" in b for b in bodies)


def test_production_needs_a_signing_secret(tmp_path: Path) -> None:
    settings = Settings(env="production", data_dir=tmp_path)
    db = Database(settings.resolved_database_url)
    personal = PersonalOrganizations(dev_mode=False)
    auth = build_auth(
        settings,
        db,
        EventRecorder(lambda: None),
        build_mailer(settings),
        personal_organization=personal.create,
    )
    with pytest.raises(RuntimeError, match="FABRIC_SIGNING_SECRET"):
        auth.start()
    assert not (tmp_path / "signing_secret").exists()


async def test_access_logs_hide_mailed_tokens(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    # The app has started (the fixture ran its lifespan), so the filter is in place.
    access = logging.getLogger("uvicorn.access")
    access.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="uvicorn.access"):
            access.info(
                '%s - "%s %s HTTP/%s" %d',
                "127.0.0.1:5000",
                "GET",
                "/v1/auth/verify?token=s3cr3t-token&x=1",
                "1.1",
                200,
            )
            access.info(
                '%s - "%s %s HTTP/%s" %d',
                "ip",
                "GET",
                "/v1/auth/callback?code=c0de&state=st",
                "1.1",
                200,
            )
    finally:
        access.removeHandler(caplog.handler)
    assert "s3cr3t-token" not in caplog.text
    assert "c0de" not in caplog.text
    assert "/v1/auth/verify?token=[redacted]&x=1" in caplog.text
