"""The token store and the JWT expiry reader, alone (no I/O)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from fabric_platform._auth import TokenStore, jwt_expiry


def jwt_with(payload: bytes) -> str:
    return "e30." + base64.urlsafe_b64encode(payload).rstrip(b"=").decode() + ".sig"


def test_jwt_expiry_reads_the_exp_claim() -> None:
    assert jwt_expiry(jwt_with(json.dumps({"exp": 1700000000}).encode())) == 1700000000.0


@pytest.mark.parametrize(
    "token",
    [
        "opaque-token",
        "a.b",
        "a.!!!.c",
        jwt_with(b"not json"),
        jwt_with(b"\xff\xfe"),
        jwt_with(b"[1, 2]"),
        jwt_with(b'{"exp": "soon"}'),
        jwt_with(b'{"exp": true}'),
        jwt_with(b'{"sub": "u"}'),
    ],
)
def test_jwt_expiry_is_none_for_anything_else(token: str) -> None:
    assert jwt_expiry(token) is None


def test_store_schedules_the_refresh_a_minute_early() -> None:
    store = TokenStore(None)
    assert store.store({"access_token": "a", "refresh_token": "r", "expires_in": 900}, 100.0)

    assert not store.needs_refresh(939.0)
    assert store.needs_refresh(940.0)


def test_short_lived_tokens_refresh_at_half_life() -> None:
    store = TokenStore(None)
    store.store({"access_token": "a", "refresh_token": "r", "expires_in": 30}, 0.0)

    assert not store.needs_refresh(14.9)
    assert store.needs_refresh(15.0)


def test_expires_in_wins_over_the_jwt_claim() -> None:
    store = TokenStore(None)
    token = jwt_with(json.dumps({"exp": 50}).encode())  # the server's clock may differ
    store.store({"access_token": token, "refresh_token": "r", "expires_in": 7200}, 1000.0)

    assert not store.needs_refresh(1000.0)


def test_without_a_refresh_token_or_an_expiry_nothing_is_refreshed() -> None:
    store = TokenStore(None)
    store.store({"access_token": "a", "expires_in": 10}, 0.0)
    assert not store.needs_refresh(1e9)

    store.store({"access_token": "a", "refresh_token": "r"}, 0.0)
    assert not store.needs_refresh(1e9)


@pytest.mark.parametrize("answer", [None, [], {}, {"access_token": ""}, {"access_token": 3}])
def test_answers_without_an_access_token_are_not_kept(answer: object) -> None:
    store = TokenStore("fab_k")
    assert not store.store(answer, 0.0)
    assert store.session is None


def test_sign_uses_the_session_then_the_api_key() -> None:
    store = TokenStore("fab_k")
    request = httpx.Request("GET", "http://x/")

    store.sign(request, None)
    assert request.headers["Authorization"] == "Bearer fab_k"
    store.store({"access_token": "a-1"}, 0.0)
    store.sign(request, store.session)
    assert request.headers["Authorization"] == "Bearer a-1"

    anonymous = TokenStore(None)
    anonymous.sign(request, None)
    assert "Authorization" not in request.headers
