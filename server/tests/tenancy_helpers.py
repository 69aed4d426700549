"""Helpers for the tenancy tests: verified users, organizations and members made over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from auth_helpers import bearer, outbox, signup, token_in
from sqlalchemy import select

from fabric_server.events.models import Event
from fabric_server.services import Services


@dataclass
class User:
    id: str
    email: str
    headers: dict[str, str]


async def verified_user(client: httpx.AsyncClient, services: Services, email: str) -> User:
    """Sign up `email` and confirm it with the mailed link, signed in (which keeps the
    password and the session: without one the link would claim the account)."""
    tokens = await signup(client, email)
    mail = (await outbox(services, email))[0]["body"]
    response = await client.post(
        "/v1/auth/verify",
        json={"token": token_in(mail, "/v1/auth/verify")},
        headers=bearer(tokens),
    )
    assert response.status_code == 200, response.text
    return User(tokens["user"]["id"], email, bearer(tokens))


async def create_org(client: httpx.AsyncClient, owner: User, slug: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/organizations", json={"slug": slug, "name": slug.title()}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def invite(
    client: httpx.AsyncClient, by: User, org_id: str, email: str, role: str = "member", **extra: Any
) -> httpx.Response:
    body = {"organization_id": org_id, "email": email, "role": role, **extra}
    return await client.post("/v1/invitations", json=body, headers=by.headers)


async def add_member(
    client: httpx.AsyncClient, services: Services, owner: User, org_id: str, email: str, role: str
) -> User:
    """A new verified user who joined `org_id` with `role` by accepting an invitation."""
    user = await verified_user(client, services, email)
    response = await invite(client, owner, org_id, email, role)
    assert response.status_code == 201, response.text
    accepted = await client.post(
        f"/v1/invitations/{response.json()['data']['id']}/accept", headers=user.headers
    )
    assert accepted.status_code == 200, accepted.text
    return user


async def events_of(services: Services, prefix: str) -> list[Event]:
    async with services.db.read() as session:
        rows = await session.scalars(
            select(Event).where(Event.kind.like(f"{prefix}%")).order_by(Event.seq)
        )
        return list(rows)


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]
