"""Accounts and sessions (wire-spec §4.2, §9.2): what is sent, what is kept, when it refreshes."""

from __future__ import annotations

import base64
import json
from typing import Callable

import httpx
import pytest

from fabric_platform import FabricAuthError, FabricClient, FabricConnectionError, FabricServerError

from .fake_auth import FakeAuthServer
from .helpers import Handler, Script, fail, ok

MakeClient = Callable[..., FabricClient]


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def logged_in(make_client: MakeClient, server: Handler, **kwargs: object) -> FabricClient:
    client = make_client(server, **kwargs)
    client._clock = Clock()
    client.login("ada@example.com", "s3cret!Pass")
    return client


def jwt(claims: dict[str, object]) -> str:
    def part(value: object) -> str:
        raw = json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part(claims)}.c2ln"


def test_login_stores_the_tokens_and_signs_with_the_access_token(make_client: MakeClient) -> None:
    server = FakeAuthServer()
    client = make_client(server, api_key="fab_key")

    auth = client.login("ada@example.com", "s3cret!Pass")
    client.get_job("job-1")

    assert auth["access_token"] == "access-1"
    assert auth["refresh_token"] == "refresh-1"
    assert auth["user"]["email"] == "ada@example.com"
    assert client.access_token == "access-1"
    login, job = server.requests
    assert json.loads(login.content) == {"email": "ada@example.com", "password": "s3cret!Pass"}
    assert job.headers["Authorization"] == "Bearer access-1"


def test_signup_sends_the_display_name_and_stores_the_tokens(make_client: MakeClient) -> None:
    server = FakeAuthServer()
    client = make_client(server)

    client.signup("ada@example.com", "s3cret!Pass", display_name="Ada")
    client.get_job("job-1")

    assert json.loads(server.requests[0].content) == {
        "email": "ada@example.com",
        "password": "s3cret!Pass",
        "display_name": "Ada",
    }
    assert server.requests[1].headers["Authorization"] == "Bearer access-1"


def test_no_credentials_means_no_authorization_header(make_client: MakeClient) -> None:
    script = Script(ok({"id": "job-1"}))
    make_client(script).get_job("job-1")

    assert "Authorization" not in script.last.headers


def test_an_auth_answer_without_tokens_is_returned_but_not_kept(make_client: MakeClient) -> None:
    script = Script(ok({"user": {"id": "u"}}, status=201), ok({}))
    client = make_client(script, api_key="fab_key")

    assert client.signup("ada@example.com", "pw") == {"user": {"id": "u"}}
    client.get_job("job-1")

    assert client.access_token is None
    assert script.last.headers["Authorization"] == "Bearer fab_key"


def test_logout_revokes_the_token_and_falls_back_to_the_api_key(make_client: MakeClient) -> None:
    server = FakeAuthServer()
    client = logged_in(make_client, server, api_key="fab_key")

    assert client.logout() is None

    logout = server.requests[-1]
    assert logout.url.path == "/v1/auth/logout"
    assert json.loads(logout.content) == {"access_token": "access-1"}
    assert logout.headers["Authorization"] == "Bearer access-1"
    assert client.access_token is None
    with pytest.raises(FabricAuthError):
        client.get_job("job-1")
    assert server.requests[-1].headers["Authorization"] == "Bearer fab_key"
    assert server.refresh_calls() == []


def test_logout_of_an_explicit_token(make_client: MakeClient) -> None:
    script = Script(httpx.Response(204))
    client = make_client(script)

    client.logout("other-token")

    assert json.loads(script.last.content) == {"access_token": "other-token"}


def test_logout_drops_the_tokens_even_when_it_fails(make_client: MakeClient) -> None:
    tokens = {"access_token": "a-1", "refresh_token": "r-1"}
    client = make_client(Script(ok(tokens), fail(401, "unauthorized", "expired")))
    client.login("ada@example.com", "pw")

    with pytest.raises(FabricAuthError):
        client.logout()

    assert client.access_token is None


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda c: c.logout_all(), "/v1/auth/logout-all"),
        (lambda c: c.change_password("old!Pass1", "new!Pass2"), "/v1/auth/change-password"),
    ],
)
def test_revoking_every_session_drops_the_tokens(
    make_client: MakeClient, call: Callable[[FabricClient], None], path: str
) -> None:
    server = FakeAuthServer()
    client = logged_in(make_client, server)

    assert call(client) is None

    assert server.requests[-1].url.path == path
    assert server.requests[-1].headers["Authorization"] == "Bearer access-1"
    assert client.access_token is None


def test_change_password_body(make_client: MakeClient) -> None:
    script = Script(ok(None))
    make_client(script).change_password("old!Pass1", "new!Pass2")

    assert json.loads(script.last.content) == {
        "current_password": "old!Pass1",
        "new_password": "new!Pass2",
    }


def test_password_recovery_and_verification_requests(make_client: MakeClient) -> None:
    script = Script(httpx.Response(204), httpx.Response(204), httpx.Response(204), ok({"ok": 1}))
    client = make_client(script)

    assert client.magic_link("ada@example.com") is None
    assert client.forgot_password("ada@example.com") is None
    assert client.reset_password("recovery-tok", "new!Pass2") is None
    assert client.verify_email("verify-tok") == {"ok": 1}

    assert [(r.url.path, json.loads(r.content)) for r in script.requests] == [
        ("/v1/auth/magic-link", {"email": "ada@example.com"}),
        ("/v1/auth/forgot-password", {"email": "ada@example.com"}),
        # The recovery token travels as ``access_token`` on the wire.
        ("/v1/auth/reset-password", {"access_token": "recovery-tok", "new_password": "new!Pass2"}),
        ("/v1/auth/verify", {"token": "verify-tok"}),
    ]


def test_verify_magic_link_stores_the_session(make_client: MakeClient) -> None:
    server = FakeAuthServer()
    client = make_client(server)

    client.verify_magic_link("magic-tok")

    assert json.loads(server.requests[0].content) == {"token": "magic-tok"}
    assert server.requests[0].url.path == "/v1/auth/magic-link/verify"
    assert client.access_token == "access-1"


def test_social_login_url_makes_no_request(make_client: MakeClient) -> None:
    script = Script(ok({}))
    client = make_client(script, base_url="https://fabric.example.com/")

    assert client.social_login_url("google") == "https://fabric.example.com/v1/auth/social/google"
    assert script.requests == []


def test_refresh_token_with_an_explicit_or_the_stored_token(make_client: MakeClient) -> None:
    server = FakeAuthServer()
    client = logged_in(make_client, server)

    assert client.refresh_token()["access_token"] == "access-2"
    assert client.refresh_token("refresh-2")["refresh_token"] == "refresh-3"

    bodies = [json.loads(r.content) for r in server.refresh_calls()]
    assert bodies == [{"refresh_token": "refresh-1"}, {"refresh_token": "refresh-2"}]
    assert client.access_token == "access-3"


def test_refresh_token_without_any_token(make_client: MakeClient) -> None:
    script = Script(ok({}))
    with pytest.raises(ValueError, match="no refresh token"):
        make_client(script).refresh_token()
    assert script.requests == []


def test_an_expiring_token_is_refreshed_before_the_call(make_client: MakeClient) -> None:
    server = FakeAuthServer(expires_in=3600)
    client = logged_in(make_client, server)
    clock = client._clock
    assert isinstance(clock, Clock)

    clock.now += 3500  # more than a minute left: nothing to do
    client.get_job("job-1")
    clock.now += 60  # less than a minute left
    client.get_job("job-2")

    assert server.paths() == [
        "/v1/auth/login",
        "/v1/jobs/job-1",
        "/v1/auth/token/refresh",
        "/v1/jobs/job-2",
    ]
    assert server.resource_bearers() == ["Bearer access-1", "Bearer access-2"]
    refresh = server.refresh_calls()[0]
    assert "Authorization" not in refresh.headers
    assert json.loads(refresh.content) == {"refresh_token": "refresh-1"}


def test_the_jwt_exp_claim_schedules_the_refresh_without_expires_in(
    make_client: MakeClient,
) -> None:
    clock = Clock(1_000_000.0)
    token = jwt({"sub": "user-1", "exp": clock.now + 600})
    answers = [ok({"access_token": token, "refresh_token": "r-1"}), ok({"access_token": "a-2"})]
    script = Script(*answers, ok({"id": "job-1"}))
    client = make_client(script)
    client._clock = clock
    client.login("ada@example.com", "pw")

    clock.now += 541
    client.get_job("job-1")

    assert [r.url.path for r in script.requests] == [
        "/v1/auth/login",
        "/v1/auth/token/refresh",
        "/v1/jobs/job-1",
    ]
    assert script.last.headers["Authorization"] == "Bearer a-2"


def test_a_401_refreshes_once_and_replays_once(make_client: MakeClient) -> None:
    server = FakeAuthServer()
    client = logged_in(make_client, server)
    server.expire_access_tokens()

    assert client.get_job("job-1") == {"id": "job-1"}

    assert server.paths()[1:] == ["/v1/jobs/job-1", "/v1/auth/token/refresh", "/v1/jobs/job-1"]
    assert server.resource_bearers() == ["Bearer access-1", "Bearer access-2"]
    assert client.access_token == "access-2"


def test_a_replay_that_fails_again_is_not_retried(make_client: MakeClient) -> None:
    server = FakeAuthServer()
    client = logged_in(make_client, server)
    server.issue = lambda status=200: ok({"access_token": "also-bad", "refresh_token": "r"})

    server.expire_access_tokens()
    with pytest.raises(FabricAuthError):
        client.get_job("job-1")

    assert server.paths()[1:] == ["/v1/jobs/job-1", "/v1/auth/token/refresh", "/v1/jobs/job-1"]
    assert client.access_token == "also-bad"


def test_a_rejected_refresh_ends_the_session(make_client: MakeClient) -> None:
    server = FakeAuthServer()
    client = logged_in(make_client, server, api_key="fab_key")
    server.expire_access_tokens()
    server.revoke_refresh_tokens()

    with pytest.raises(FabricAuthError) as info:
        client.get_job("job-1")

    assert info.value.message == "access token expired"  # the original 401, not the refresh's
    assert client.access_token is None
    assert len(server.refresh_calls()) == 1
    with pytest.raises(FabricAuthError):
        client.get_job("job-1")
    assert server.requests[-1].headers["Authorization"] == "Bearer fab_key"
    assert len(server.refresh_calls()) == 1


def test_a_failing_refresh_server_keeps_the_session(make_client: MakeClient) -> None:
    answers = [ok({"access_token": "a-1", "refresh_token": "r-1"}), fail(401, "unauthorized")]
    script = Script(*answers, fail(503, "unavailable", "down"))
    client = make_client(script)
    client.login("ada@example.com", "pw")

    with pytest.raises(FabricAuthError):
        client.get_job("job-1")

    assert client.access_token == "a-1"


def test_proactive_refresh_failure_is_not_fatal(make_client: MakeClient) -> None:
    answers = [ok({"access_token": "a-1", "refresh_token": "r-1", "expires_in": 100})]
    script = Script(*answers, fail(502), ok({"id": "job-1"}))
    client = make_client(script)
    client._clock = Clock()
    client.login("ada@example.com", "pw")
    client._clock.now += 100

    assert client.get_job("job-1") == {"id": "job-1"}
    assert script.last.headers["Authorization"] == "Bearer a-1"


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.login("ada@example.com", "wrong"),
        lambda c: c.signup("ada@example.com", "wrong"),
    ],
)
def test_auth_endpoints_never_refresh(
    make_client: MakeClient, call: Callable[[FabricClient], object]
) -> None:
    server = FakeAuthServer()
    client = logged_in(make_client, server)
    server.expire_access_tokens()

    with pytest.raises(FabricAuthError, match="invalid email or password"):
        call(client)

    assert server.refresh_calls() == []


def test_an_expired_session_is_not_refreshed_for_an_auth_endpoint(make_client: MakeClient) -> None:
    server = FakeAuthServer(expires_in=100)
    client = logged_in(make_client, server)
    client._clock.now += 1000

    client.forgot_password("ada@example.com")
    client.logout()

    assert server.refresh_calls() == []


def test_a_stream_rejected_with_401_refreshes_and_reconnects(make_client: MakeClient) -> None:
    server = FakeAuthServer()
    client = logged_in(make_client, server)
    server.expire_access_tokens()

    events = list(client.stream_run_events("run-1"))

    assert [e["kind"] for e in events] == ["workflow.run.completed"]
    assert server.resource_bearers() == ["Bearer access-1", "Bearer access-2"]


def test_transport_retries_are_signed_with_the_current_token(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    answers = [ok({"access_token": "a-1", "refresh_token": "r-1"}), fail(503, "unavailable")]
    script = Script(*answers, ok({"id": "job-1"}))
    client = make_client(script)
    client.login("ada@example.com", "pw")

    assert client.get_job("job-1") == {"id": "job-1"}
    assert [r.headers["Authorization"] for r in script.requests[1:]] == ["Bearer a-1"] * 2
    assert len(sleeps) == 1


def test_a_5xx_login_is_a_server_error(make_client: MakeClient) -> None:
    client = make_client(Script(fail(500, "internal_error", "boom")), max_retries=0)

    with pytest.raises(FabricServerError):
        client.login("ada@example.com", "pw")
    assert client.access_token is None


def test_a_refresh_cut_by_the_network_releases_the_lock(make_client: MakeClient) -> None:
    server = FakeAuthServer()
    failures = [httpx.ReadError("connection reset")]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/token/refresh" and failures:
            raise failures.pop()
        return server(request)

    client = logged_in(make_client, handler, max_retries=0)
    server.expire_access_tokens()

    with pytest.raises(FabricConnectionError):
        client.get_job("job-1")
    assert client.get_job("job-1") == {"id": "job-1"}  # a held lock would hang here

    assert client.access_token == "access-2"
