"""Which organization a client acts in when a call names none.

Without an API key: the given one, else the default organization (the spec's constructor).
With an API key: the given one, else none is sent and the server uses the key's; a route that
needs the organization in its path learns it from the server once.
"""

from __future__ import annotations

from typing import Any, Callable

import httpx
import pytest

from fabric_platform import AsyncFabricClient, FabricClient, FabricError

from .helpers import Script, ok

MakeClient = Callable[..., FabricClient]
DEFAULT_ORG = "00000000-0000-0000-0000-000000000010"
KEY_ORG = "org-of-the-key"


def sent(script: Script) -> list[tuple[str, str]]:
    return [(r.method, r.url.path) for r in script.requests]


def identity(org_id: Any = KEY_ORG, kind: str = "api_key") -> httpx.Response:
    return ok({"principal_id": "p-1", "kind": kind, "organization_id": org_id})


def test_without_an_api_key_the_default_organization_is_sent(make_client: MakeClient) -> None:
    script = Script(ok({"id": "job-1"}, 201))
    client = make_client(script)

    client.create_job(modality="text", input={"prompt": "p"})

    assert client.organization_id == DEFAULT_ORG
    assert script.bodies()[0]["organization_id"] == DEFAULT_ORG


def test_with_an_api_key_no_organization_is_sent(make_client: MakeClient) -> None:
    script = Script(ok({"id": "x"}, 201))
    client = make_client(script, api_key="fab_live_k")

    client.create_job(modality="text", input={"prompt": "p"})
    client.upsert_workflow("wf", [{"key": "a", "type": "workflow.noop"}])
    client.create_gallery("persona", "Mine")
    client.list_galleries("persona")

    assert client.organization_id is None
    create_job, upsert, gallery, _ = script.bodies()
    assert "organization_id" not in create_job
    assert "organization_id" not in upsert
    assert gallery == {"kind": "persona", "name": "Mine"}
    assert dict(script.last.url.params) == {"kind": "persona"}


def test_the_environment_names_the_organization(
    monkeypatch: pytest.MonkeyPatch, make_client: MakeClient
) -> None:
    monkeypatch.setenv("FABRIC_ORGANIZATION_ID", "org-env")
    script = Script(ok({"id": "x"}, 201))
    with_key = make_client(script, api_key="fab_live_k")
    without_key = make_client(script)
    argument = make_client(script, api_key="fab_live_k", organization_id="org-arg")

    assert with_key.organization_id == without_key.organization_id == "org-env"
    assert argument.organization_id == "org-arg"
    with_key.set_secret("A", "1")
    assert script.last.url.path == "/v1/organizations/org-env/secrets"


def test_an_empty_environment_value_is_ignored(
    monkeypatch: pytest.MonkeyPatch, make_client: MakeClient
) -> None:
    monkeypatch.setenv("FABRIC_ORGANIZATION_ID", "")
    assert make_client(Script(ok(None))).organization_id == DEFAULT_ORG
    assert make_client(Script(ok(None)), api_key="fab_live_k").organization_id is None


def test_a_path_route_learns_the_key_organization_once(make_client: MakeClient) -> None:
    script = Script(identity(), ok({"name": "A"}, 201), ok([{"name": "A"}]), ok(None))
    client = make_client(script, api_key="fab_live_k")

    client.set_secret("A", "1")
    assert client.list_secrets() == ["A"]
    client.delete_secret("A")

    assert client.organization_id == KEY_ORG
    assert sent(script) == [
        ("GET", "/v1/me"),
        ("POST", f"/v1/organizations/{KEY_ORG}/secrets"),
        ("GET", f"/v1/organizations/{KEY_ORG}/secrets"),
        ("DELETE", f"/v1/organizations/{KEY_ORG}/secrets/A"),
    ]
    # Once known, it is sent where a body takes it too.
    client.create_job(modality="text", input={})
    assert script.bodies()[-1]["organization_id"] == KEY_ORG


@pytest.mark.parametrize(
    ("organizations", "expected"),
    [
        ([{"id": "org-1", "role": "owner"}], "org-1"),
        ([{"id": "org-1"}, {"id": DEFAULT_ORG}], DEFAULT_ORG),
    ],
)
def test_a_user_token_learns_the_organization_the_server_would_pick(
    make_client: MakeClient, organizations: list[dict[str, str]], expected: str
) -> None:
    script = Script(identity(None, "user"), ok(organizations), ok([]))
    client = make_client(script, api_key="eyJ.user.jwt")

    assert client.list_secrets() == []

    assert sent(script) == [
        ("GET", "/v1/me"),
        ("GET", "/v1/me/organizations"),
        ("GET", f"/v1/organizations/{expected}/secrets"),
    ]


def test_an_ambiguous_organization_is_an_error_not_a_guess(make_client: MakeClient) -> None:
    script = Script(identity(None, "user"), ok([{"id": "org-1"}, {"id": "org-2"}]))
    client = make_client(script, api_key="eyJ.user.jwt")

    with pytest.raises(FabricError, match="organization_id"):
        client.set_secret("A", "1")

    assert sent(script) == [("GET", "/v1/me"), ("GET", "/v1/me/organizations")]
    assert client.organization_id is None


def test_logging_in_forgets_the_learned_organization(make_client: MakeClient) -> None:
    auth = {"access_token": "tok", "refresh_token": "r", "expires_in": 7200, "user": {}}
    script = Script(identity(), ok([]), ok(auth), identity("org-user"), ok([]))
    client = make_client(script, api_key="fab_live_k")

    client.list_secrets()
    client.login("a@example.com", "pw")
    client.list_secrets()

    assert [path for _, path in sent(script)] == [
        "/v1/me",
        f"/v1/organizations/{KEY_ORG}/secrets",
        "/v1/auth/login",
        "/v1/me",
        "/v1/organizations/org-user/secrets",
    ]


async def test_async_client_learns_the_organization_once(
    make_async_client: Callable[..., AsyncFabricClient],
) -> None:
    script = Script(identity(), ok([]), ok([]))
    client = make_async_client(script, api_key="fab_live_k")

    await client.list_secrets()
    await client.list_secrets()

    assert sent(script) == [
        ("GET", "/v1/me"),
        ("GET", f"/v1/organizations/{KEY_ORG}/secrets"),
        ("GET", f"/v1/organizations/{KEY_ORG}/secrets"),
    ]
    assert client.organization_id == KEY_ORG


async def test_async_client_sends_no_organization_with_an_api_key(
    make_async_client: Callable[..., AsyncFabricClient],
) -> None:
    script = Script(ok({"id": "job-1"}, 201))
    client = make_async_client(script, api_key="fab_live_k")

    await client.create_job(modality="text", input={}, model="echo-1", priority=5)

    assert script.bodies() == [{"modality": "text", "input": {}, "model": "echo-1", "priority": 5}]
