"""Mailed links and the data dir stay private: no clear-text outbox outside dev mode unless
asked for, and the files the server creates are for its own user only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from auth_helpers import signup

from fabric_server.app import create_app
from fabric_server.mail import DiscardingMailer, build_mailer
from fabric_server.testing import fast_settings

PRODUCTION = {"env": "production", "signing_secret": "s" * 32, "secrets_master_key": "k" * 32}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


async def test_production_without_smtp_refuses_to_start(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path, dev_outbox=None, **PRODUCTION)
    assert isinstance(build_mailer(settings), DiscardingMailer)
    app = create_app(settings)
    with pytest.raises(RuntimeError, match="FABRIC_SMTP_HOST"):
        async with app.router.lifespan_context(app):
            pass  # pragma: no cover - start-up is refused


async def test_production_starts_with_smtp_or_an_explicit_outbox(
    database_url: str, tmp_path: Path
) -> None:
    for extra in ({"smtp_host": "mail.example.com"}, {"dev_outbox": True}):
        settings = fast_settings(database_url, tmp_path, **{**PRODUCTION, **extra})
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://fabric.test"
            ) as client:
                assert (await client.get("/v1/health")).status_code == 200


async def test_the_data_dir_and_its_files_are_private(tmp_path: Path, usual_umask: None) -> None:
    data_dir = tmp_path / "fresh" / "data"
    settings = fast_settings(f"sqlite:///{data_dir / 'fabric.db'}", data_dir)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fabric.test") as client:
            await signup(client, "private@example.com")  # mails a verification link
    assert mode(data_dir) == 0o700
    for name in ("fabric.db", "signing_secret", "secrets.key"):
        assert mode(data_dir / name) == 0o600, name
    assert mode(data_dir / "outbox") == 0o700
    mails = list((data_dir / "outbox").glob("*.eml"))
    assert mails
    assert {mode(mail) for mail in mails} == {0o600}
    for extra in data_dir.glob("fabric.db-*"):
        assert mode(extra) & 0o077 == 0, extra.name
