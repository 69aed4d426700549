"""`fabric_platform.webhooks`: both signature forms, freshness, and `construct_event`."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from fabric_platform import FabricError
from fabric_platform.webhooks import FabricSignatureError, construct_event, verify_signature

SECRET = "whsec_test_secret_value"
BODY = json.dumps({"id": "ev-1", "kind": "job.completed", "payload": {}}).encode()
NOW = 1_800_000_000


def plain(body: bytes = BODY, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def stamped(ts: int = NOW, body: bytes = BODY, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def test_plain_signature_is_the_reference_scheme() -> None:
    # Key: the secret string verbatim (with its prefix); message: the raw body bytes.
    assert verify_signature(BODY, plain(), SECRET)
    assert not verify_signature(BODY + b" ", plain(), SECRET)
    assert not verify_signature(BODY, plain(), "test_secret_value")
    assert not verify_signature(BODY, plain().upper(), SECRET)
    assert not verify_signature(BODY, plain()[:-1], SECRET)
    assert not verify_signature(BODY, "", SECRET)
    assert not verify_signature(BODY, "sha256=", SECRET)
    assert not verify_signature(BODY, "sha256=é", SECRET)


def test_plain_signature_with_a_timestamp_checks_its_age() -> None:
    assert verify_signature(BODY, plain(), SECRET, timestamp=NOW, now=NOW + 299)
    assert verify_signature(BODY, plain(), SECRET, timestamp=str(NOW), now=NOW - 10)
    assert not verify_signature(BODY, plain(), SECRET, timestamp=NOW, now=NOW + 301)
    assert not verify_signature(BODY, plain(), SECRET, timestamp="soon", now=NOW)
    assert verify_signature(BODY, plain(), SECRET, timestamp=NOW, tolerance=None, now=0)


def test_timestamped_signature() -> None:
    assert verify_signature(BODY, stamped(), SECRET, now=NOW)
    assert verify_signature(BODY, stamped(), SECRET, now=NOW + 300)
    assert not verify_signature(BODY, stamped(), SECRET, now=NOW + 301)
    assert not verify_signature(BODY, stamped(), SECRET, now=NOW - 301)
    assert verify_signature(BODY, stamped(), SECRET, tolerance=None, now=0)
    assert verify_signature(BODY, stamped(), SECRET, tolerance=3600, now=NOW + 3000)
    # The timestamp is signed: moving it breaks the signature.
    forged = stamped().replace(f"t={NOW}", f"t={NOW + 100}")
    assert not verify_signature(BODY, forged, SECRET, now=NOW + 100)
    assert not verify_signature(BODY, stamped(secret="whsec_other"), SECRET, now=NOW)
    # A separate timestamp must agree with the signed one.
    assert verify_signature(BODY, stamped(), SECRET, timestamp=NOW, now=NOW)
    assert not verify_signature(BODY, stamped(), SECRET, timestamp=NOW + 1, now=NOW)


def test_timestamped_signature_accepts_several_candidates_and_spaces() -> None:
    other = stamped(secret="whsec_old").split(",v1=")[1]
    value = stamped() + f", v1={other}"
    assert verify_signature(BODY, value, SECRET, now=NOW)
    assert verify_signature(BODY, value, "whsec_old", now=NOW)
    assert not verify_signature(BODY, f"t={NOW}", SECRET, now=NOW)
    assert not verify_signature(BODY, "v1=abc", SECRET, now=NOW)
    assert not verify_signature(BODY, "garbage", SECRET, now=NOW)


def headers(**extra: str) -> dict[str, str]:
    values = {
        "Content-Type": "application/json",
        "X-Fabric-Event": "job.completed",
        "X-Fabric-Delivery": "del-1",
        "X-Fabric-Timestamp": str(NOW),
        "X-Fabric-Signature": plain(),
        "X-Fabric-Signature-256": stamped(),
    }
    values.update(extra)
    return values


def test_construct_event_returns_the_event() -> None:
    event = construct_event(BODY, headers(), SECRET, now=NOW)
    assert event == {"id": "ev-1", "kind": "job.completed", "payload": {}}
    lower = {k.lower(): v for k, v in headers().items()}
    assert construct_event(BODY, lower, SECRET, now=NOW)["id"] == "ev-1"


def test_construct_event_prefers_the_timestamped_signature() -> None:
    with pytest.raises(FabricSignatureError):
        construct_event(BODY, headers(), SECRET, now=NOW + 1000)
    only_plain = headers()
    del only_plain["X-Fabric-Signature-256"]
    assert construct_event(BODY, only_plain, SECRET, now=NOW)["kind"] == "job.completed"
    with pytest.raises(FabricSignatureError):
        construct_event(BODY, only_plain, SECRET, now=NOW + 1000)
    del only_plain["X-Fabric-Timestamp"]
    assert construct_event(BODY, only_plain, SECRET, now=NOW + 1000)["id"] == "ev-1"


def test_construct_event_refuses_bad_requests() -> None:
    with pytest.raises(FabricSignatureError, match="no X-Fabric-Signature"):
        construct_event(BODY, {"Content-Type": "application/json"}, SECRET)
    with pytest.raises(FabricSignatureError, match="invalid"):
        construct_event(BODY, headers(), "whsec_wrong", now=NOW)
    with pytest.raises(FabricSignatureError, match="invalid"):
        construct_event(BODY + b"\n", headers(), SECRET, now=NOW)
    array = b"[1, 2]"
    signed = headers(**{"X-Fabric-Signature-256": stamped(body=array)})
    with pytest.raises(FabricSignatureError, match="not a JSON object"):
        construct_event(array, signed, SECRET, now=NOW)
    text = b"not json"
    signed = headers(**{"X-Fabric-Signature-256": stamped(body=text)})
    with pytest.raises(FabricSignatureError, match="not valid JSON"):
        construct_event(text, signed, SECRET, now=NOW)


def test_signature_error_is_a_fabric_error() -> None:
    assert issubclass(FabricSignatureError, FabricError)
