"""Token material: the signing secret, access-token JWTs, opaque tokens and their digests."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from fabric_server.settings import Settings
from fabric_server.storage import private_dir

log = logging.getLogger("fabric_server.auth")

ISSUER = "fabric"
ACCESS_AUDIENCE = "fabric-api"
SECRET_FILE = "signing_secret"  # noqa: S105 - a file name


def new_opaque_token() -> str:
    """A random, URL-safe token with 256 bits of entropy (refresh and mailed tokens)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What is stored for an opaque token: its SHA-256, hex. Lookups go by this digest."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_signing_secret(settings: Settings) -> str:
    """`FABRIC_SIGNING_SECRET`, or in dev mode a secret kept in the data dir (mode 0600).

    The generated secret survives restarts, so tokens issued before a restart stay valid.
    """
    if settings.signing_secret:
        return settings.signing_secret
    if not settings.is_dev:
        raise RuntimeError("production mode needs FABRIC_SIGNING_SECRET to be set")
    path = settings.data_dir / SECRET_FILE
    if not path.exists():
        _create_secret_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by other users (mode %o); use chmod 600", path, mode)
    secret = path.read_text(encoding="utf-8").strip()
    if not secret:
        raise RuntimeError(f"{path} is empty; delete it to generate a new signing secret")
    return secret


def _create_secret_file(path: Path) -> None:
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
        # link() never replaces: when two processes start at once, the first secret wins.
        try:
            os.link(tmp, path)
            log.warning("generated a signing secret in %s (dev mode)", path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    expires_at: dt.datetime


class TokenSigner:
    """Signs and reads HS256 tokens. Each use gets its own key derived from the secret, so
    a token made for one purpose (say, the OAuth state cookie) never passes as another."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode("utf-8")

    def _key(self, purpose: str) -> bytes:
        return hmac.new(self._secret, f"fabric:{purpose}".encode(), hashlib.sha256).digest()

    def issue_access(
        self, user_id: str, session_id: str, *, now: dt.datetime, ttl_seconds: int
    ) -> str:
        claims = {
            "iss": ISSUER,
            "aud": ACCESS_AUDIENCE,
            "sub": user_id,
            "sid": session_id,
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + ttl_seconds,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._key("access"), algorithm="HS256")

    def read_access(
        self, token: str, *, now: dt.datetime, allow_expired: bool = False
    ) -> AccessClaims | None:
        """The claims of a well-signed access token, or None (bad signature, expired, junk)."""
        claims = self._decode(token, "access", audience=ACCESS_AUDIENCE)
        if claims is None:
            return None
        sub, sid, exp = claims.get("sub"), claims.get("sid"), claims.get("exp")
        if not isinstance(sub, str) or not isinstance(sid, str) or not isinstance(exp, int):
            return None
        expires_at = dt.datetime.fromtimestamp(exp, dt.UTC)
        if not allow_expired and expires_at <= now:
            return None
        return AccessClaims(user_id=sub, session_id=sid, expires_at=expires_at)

    def sign(self, purpose: str, payload: dict[str, Any], *, now: dt.datetime, ttl: int) -> str:
        """A short-lived signed value for `purpose` (e.g. the social sign-in state)."""
        body = {**payload, "iss": ISSUER, "exp": int(now.timestamp()) + ttl}
        return jwt.encode(body, self._key(purpose), algorithm="HS256")

    def unsign(self, purpose: str, token: str, *, now: dt.datetime) -> dict[str, Any] | None:
        claims = self._decode(token, purpose)
        if claims is None:
            return None
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= int(now.timestamp()):
            return None
        return claims

    def _decode(
        self, token: str, purpose: str, *, audience: str | None = None
    ) -> dict[str, Any] | None:
        # Expiry is checked by the callers against the service clock (testable), not here.
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key(purpose),
                algorithms=["HS256"],
                audience=audience,
                issuer=ISSUER,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return None
        return claims
