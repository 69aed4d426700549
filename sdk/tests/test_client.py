"""Construction, configuration, headers, lifecycle and envelope unwrapping."""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx
import pytest

from fabric_platform import FabricClient, FabricClientClosedError, FabricError

from .helpers import Script, ok

MakeClient = Callable[..., FabricClient]
DEFAULT_ORG = "00000000-0000-0000-0000-000000000010"


def test_defaults() -> None:
    with FabricClient() as client:
        assert client.base_url == "http://localhost:3001"
        assert client.organization_id == DEFAULT_ORG
        assert client.principal_id is None
        assert client.timeout == 30.0
        assert client.max_retries == 2


def test_arguments_win_over_environment(
    monkeypatch: pytest.MonkeyPatch, make_client: MakeClient
) -> None:
    monkeypatch.setenv("FABRIC_BASE_URL", "http://env.example:1")
    monkeypatch.setenv("FABRIC_API_KEY", "fab_env")
    script = Script(ok({"status": "ok"}))
    client = make_client(script, base_url="https://arg.example/", api_key="fab_arg")

    client.health_check()

    assert client.base_url == "https://arg.example"
    assert str(script.last.url) == "https://arg.example/v1/health"
    assert script.last.headers["Authorization"] == "Bearer fab_arg"


def test_environment_fills_missing_arguments(
    monkeypatch: pytest.MonkeyPatch, make_client: MakeClient
) -> None:
    monkeypatch.setenv("FABRIC_BASE_URL", "http://env.example:1/api/")
    monkeypatch.setenv("FABRIC_API_KEY", "fab_env")
    script = Script(ok({"status": "ok"}))
    client = make_client(script)

    client.health_check()

    assert str(script.last.url) == "http://env.example:1/api/v1/health"
    assert script.last.headers["Authorization"] == "Bearer fab_env"


def test_empty_environment_values_are_ignored(
    monkeypatch: pytest.MonkeyPatch, make_client: MakeClient
) -> None:
    monkeypatch.setenv("FABRIC_BASE_URL", "")
    monkeypatch.setenv("FABRIC_API_KEY", "")
    script = Script(ok({"status": "ok"}))
    client = make_client(script)

    client.health_check()

    assert str(script.last.url) == "http://localhost:3001/v1/health"
    assert "Authorization" not in script.last.headers


def test_environment_is_read_once_at_construction(
    monkeypatch: pytest.MonkeyPatch, make_client: MakeClient
) -> None:
    script = Script(ok({"status": "ok"}))
    client = make_client(script)
    monkeypatch.setenv("FABRIC_API_KEY", "fab_late")

    client.health_check()

    assert "Authorization" not in script.last.headers


def test_headers_on_every_request(make_client: MakeClient) -> None:
    script = Script(ok({"status": "ok"}))
    client = make_client(script, api_key="fab_live_abc123", principal_id="user-1")

    client.health_check()

    headers = script.last.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == "Bearer fab_live_abc123"
    assert headers["X-Principal-Id"] == "user-1"
    assert headers["User-Agent"] == "fabric-platform/0.1.0"
    assert "Idempotency-Key" not in headers


def test_no_credentials_no_auth_headers(make_client: MakeClient) -> None:
    script = Script(ok({"status": "ok"}))
    client = make_client(script)

    client.health_check()

    assert "Authorization" not in script.last.headers
    assert "X-Principal-Id" not in script.last.headers


def test_request_timeout_is_the_client_timeout(make_client: MakeClient) -> None:
    script = Script(ok({"status": "ok"}))
    client = make_client(script, timeout=7.5)

    client.health_check()

    assert script.last.extensions["timeout"] == {
        "connect": 7.5,
        "read": 7.5,
        "write": 7.5,
        "pool": 7.5,
    }


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (ok({"status": "ok", "version": "1.0"}), {"status": "ok", "version": "1.0"}),
        (httpx.Response(200, json={"status": "ok"}), None),
        (httpx.Response(204), None),
        (httpx.Response(200, text="plain text"), None),
        (httpx.Response(200, json=[1, 2]), [1, 2]),
        (httpx.Response(200, json="scalar"), "scalar"),
        (httpx.Response(201, json={"data": [{"id": "a"}], "meta": {"status": 201}}), [{"id": "a"}]),
    ],
)
def test_envelope_unwrapping(
    make_client: MakeClient, response: httpx.Response, expected: Any
) -> None:
    client = make_client(Script(response))

    assert client.health_check() == expected


def test_closed_client_raises_a_fabric_error(make_client: MakeClient) -> None:
    script = Script(ok({"status": "ok"}))
    client = make_client(script)
    client.close()

    with pytest.raises(FabricClientClosedError):
        client.health_check()
    with pytest.raises(FabricClientClosedError):
        client.stream_job_events("job-1")
    with pytest.raises(FabricClientClosedError):
        next(client.iter_jobs())
    assert client.is_closed
    assert script.requests == []


def test_context_manager_closes() -> None:
    with FabricClient(transport=httpx.MockTransport(Script(ok({})))) as client:
        client.health_check()
    assert client.is_closed
    with pytest.raises(FabricClientClosedError):
        client.get_job("job-1")
    with pytest.raises(FabricClientClosedError), client:
        pass


def test_closed_client_error_is_a_fabric_error() -> None:
    assert issubclass(FabricClientClosedError, FabricError)


def test_injected_http_client_is_used_and_left_open() -> None:
    script = Script(ok({"status": "ok"}))
    http = httpx.Client(transport=httpx.MockTransport(script))
    client = FabricClient(http_client=http, base_url="http://fabric.test")

    assert client.health_check() == {"status": "ok"}
    client.close()

    assert not http.is_closed
    with pytest.raises(FabricClientClosedError):
        client.health_check()
    http.close()


def test_closing_the_injected_http_client_closes_the_fabric_client() -> None:
    http = httpx.Client(transport=httpx.MockTransport(Script(ok({}))))
    client = FabricClient(http_client=http)
    http.close()

    with pytest.raises(FabricClientClosedError):
        client.health_check()


async def test_invalid_construction() -> None:
    transport = httpx.MockTransport(Script(ok({})))
    with httpx.Client() as http, pytest.raises(ValueError, match="either"):
        FabricClient(http_client=http, transport=transport)
    async with httpx.AsyncClient() as async_http:
        with pytest.raises(TypeError, match=r"httpx\.Client"):
            FabricClient(http_client=async_http)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        FabricClient(timeout=0)
    with pytest.raises(ValueError, match="max_retries"):
        FabricClient(max_retries=-1)


def test_identifiers_are_path_encoded(make_client: MakeClient) -> None:
    script = Script(ok({"id": "a/b"}))
    client = make_client(script)

    client.get_job("a/b?c")

    assert script.last.url.raw_path == b"/v1/jobs/a%2Fb%3Fc"


def test_empty_identifier_is_refused(make_client: MakeClient) -> None:
    script = Script(ok({}))
    client = make_client(script)

    with pytest.raises(ValueError, match="non-empty"):
        client.get_job("")
    assert script.requests == []


def test_body_is_compact_utf8_json(make_client: MakeClient) -> None:
    script = Script(ok({"id": "j"}, status=201))
    client = make_client(script)

    client.create_job(modality="text", input={"prompt": "héllo"})

    assert script.last.content == json.dumps(
        {"modality": "text", "input": {"prompt": "héllo"}, "organization_id": DEFAULT_ORG},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
