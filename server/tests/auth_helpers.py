"""Helpers for the account tests: a manual clock, mail reading, app clients, events."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select

from fabric_server.app import create_app
from fabric_server.events.models import Event
from fabric_server.mail.outbox import list_outbox
from fabric_server.services import Services, build_services
from fabric_server.settings import Settings

PASSWORD = "password123"


class ManualClock:
    """A clock the test moves by hand (lock and token expiry without waiting)."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@asynccontextmanager
async def app_client(
    settings: Settings, base_url: str = "http://fabric.test"
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """The ASGI app in-process with its lifespan, for settings a test chooses."""
    services = build_services(settings)
    app = create_app(services=services)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client, services


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {tokens['access_token']}"}


async def signup(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/signup", json={"email": email, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"email": email, "password": password})


async def outbox(services: Services, to: str) -> list[dict[str, Any]]:
    """Mail sent to `to`, newest first (the dev outbox, read over the database)."""
    async with services.db.read() as session:
        mails = await list_outbox(session, to, 100)
        return [{"subject": m.subject, "body": m.body} for m in mails]


def link_in(body: str, path: str) -> str:
    """The link to `path` in a mail body."""
    match = re.search(rf"(https?://\S+{re.escape(path)}\?token=\S+)", body)
    assert match, f"no link to {path} in:\n{body}"
    return match.group(1)


def token_in(body: str, path: str) -> str:
    return parse_qs(urlsplit(link_in(body, path)).query)["token"][0]


async def auth_events(services: Services) -> list[Event]:
    async with services.db.read() as session:
        rows = await session.scalars(
            select(Event).where(Event.kind.like("auth.%")).order_by(Event.seq)
        )
        return list(rows)
