"""Verifying webhook deliveries from a Fabric server.

Every delivery is a ``POST`` whose body is one domain event as JSON, signed with the endpoint's
secret (the ``whsec_…`` string, used verbatim as the HMAC-SHA256 key):

* ``X-Fabric-Signature: sha256=<hex>`` — the HMAC of the raw body;
* ``X-Fabric-Signature-256: t=<unix seconds>,v1=<hex>`` — the HMAC of ``b"<t>." + body``,
  which binds the time of sending so old deliveries cannot be replayed;
* ``X-Fabric-Timestamp``, ``X-Fabric-Event``, ``X-Fabric-Delivery`` (stable across retries:
  de-duplicate on it).

Verify the raw bytes as received, before any JSON parsing::

    from fabric_platform.webhooks import FabricSignatureError, construct_event

    try:
        event = construct_event(request_body, request_headers, secret)
    except FabricSignatureError:
        return 400
    if event["kind"] == "workflow.run.completed":
        ...
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any, Optional, Union

from ._errors import FabricSignatureError

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_256_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "FabricSignatureError",
    "construct_event",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Fabric-Signature"
SIGNATURE_256_HEADER = "X-Fabric-Signature-256"
TIMESTAMP_HEADER = "X-Fabric-Timestamp"
EVENT_HEADER = "X-Fabric-Event"
DELIVERY_HEADER = "X-Fabric-Delivery"
DEFAULT_TOLERANCE = 300.0


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def _fresh(timestamp: Union[str, int], tolerance: Optional[float], now: Optional[float]) -> bool:
    try:
        sent = int(str(timestamp).strip())
    except ValueError:
        return False
    if tolerance is None:
        return True
    current = time.time() if now is None else now
    return abs(current - sent) <= tolerance


def _parse_timestamped(signature: str) -> Optional[tuple[str, list[str]]]:
    """``t=<ts>,v1=<hex>[,v1=<hex>…]`` → (ts, [hex, …]); None if it is not that form."""
    timestamp: Optional[str] = None
    candidates: list[str] = []
    for part in signature.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return None
        if name == "t":
            timestamp = value
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return None
    return timestamp, candidates


def verify_signature(
    raw_body: bytes,
    signature: str,
    secret: str,
    *,
    timestamp: Union[str, int, None] = None,
    tolerance: Optional[float] = DEFAULT_TOLERANCE,
    now: Optional[float] = None,
) -> bool:
    """True when ``signature`` is a valid signature of ``raw_body`` under ``secret``.

    ``signature`` is either header value: ``sha256=<hex>`` (``X-Fabric-Signature``) or
    ``t=<ts>,v1=<hex>`` (``X-Fabric-Signature-256``). The comparison takes constant time.
    When a timestamp is known — the signed ``t`` of the second form, or ``timestamp`` (the
    ``X-Fabric-Timestamp`` header) — it must be within ``tolerance`` seconds of ``now``
    (default: the current time); ``tolerance=None`` skips that check. Only the second form
    signs the timestamp, so only it protects against replays.
    """
    if isinstance(raw_body, str):
        raw_body = raw_body.encode("utf-8")
    signature = signature.strip()
    if signature.startswith("sha256="):
        if not _same("sha256=" + _hmac_hex(secret, raw_body), signature):
            return False
        return timestamp is None or _fresh(timestamp, tolerance, now)
    parsed = _parse_timestamped(signature)
    if parsed is None:
        return False
    signed_at, candidates = parsed
    if timestamp is not None and str(timestamp).strip() != signed_at:
        return False
    expected = _hmac_hex(secret, signed_at.encode("utf-8") + b"." + raw_body)
    matched = [_same(expected, candidate) for candidate in candidates]  # check them all
    return any(matched) and _fresh(signed_at, tolerance, now)


def construct_event(
    raw_body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: Optional[float] = DEFAULT_TOLERANCE,
    now: Optional[float] = None,
) -> dict[str, Any]:
    """Verify a delivery from its headers and return the event it carries.

    ``headers`` is any mapping of the request's headers (names in any case). The timestamped
    ``X-Fabric-Signature-256`` is checked when present, else ``X-Fabric-Signature`` (with
    ``X-Fabric-Timestamp`` when sent). Raises `FabricSignatureError` when the signature is
    missing, wrong or too old, or the body is not a JSON object.
    """
    found = {str(name).lower(): value for name, value in headers.items()}
    if isinstance(raw_body, str):
        raw_body = raw_body.encode("utf-8")
    timestamped = found.get(SIGNATURE_256_HEADER.lower())
    plain = found.get(SIGNATURE_HEADER.lower())
    if timestamped is not None:
        valid = verify_signature(raw_body, timestamped, secret, tolerance=tolerance, now=now)
    elif plain is not None:
        sent_at = found.get(TIMESTAMP_HEADER.lower())
        valid = verify_signature(
            raw_body, plain, secret, timestamp=sent_at, tolerance=tolerance, now=now
        )
    else:
        raise FabricSignatureError(
            f"the request carries no {SIGNATURE_256_HEADER} or {SIGNATURE_HEADER} header"
        )
    if not valid:
        raise FabricSignatureError("the webhook signature is invalid or too old")
    try:
        event = json.loads(raw_body)
    except ValueError as exc:
        raise FabricSignatureError("the webhook body is not valid JSON") from exc
    if not isinstance(event, dict):
        raise FabricSignatureError("the webhook body is not a JSON object")
    return event
