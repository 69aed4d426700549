"""Signing deliveries.

Two signatures travel with every delivery, both HMAC-SHA256 keyed with the endpoint's
secret string encoded as UTF-8, used verbatim (including the `whsec_` prefix):

* `X-Fabric-Signature: sha256=<hex>` over the raw body — what the reference clients verify.
* `X-Fabric-Signature-256: t=<unix seconds>,v1=<hex>` over `b"<t>." + body` — binds the
  time of sending, so a receiver can refuse replays older than its tolerance.

The body is signed exactly as sent; it is never re-serialised afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fabric_server import __version__

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
USER_AGENT = f"Fabric-Webhooks/{__version__}"


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def body_signature(secret: str, body: bytes) -> str:
    return "sha256=" + _hmac_hex(secret, body)


def timestamped_signature(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1=" + _hmac_hex(secret, f"{timestamp}.".encode() + body)


def delivery_headers(
    secret: str, body: bytes, *, delivery_id: str, event_kind: str, timestamp: int, attempt: int
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Fabric-Event": event_kind,
        "X-Fabric-Delivery": delivery_id,
        "X-Fabric-Attempt": str(attempt),
        "X-Fabric-Timestamp": str(timestamp),
        "X-Fabric-Signature": body_signature(secret, body),
        "X-Fabric-Signature-256": timestamped_signature(secret, body, timestamp),
    }
