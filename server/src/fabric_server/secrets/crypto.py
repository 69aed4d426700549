"""Sealing secret values: AES-256-GCM under a master key from settings.

`FABRIC_SECRETS_MASTER_KEY` is either 32 bytes in base64 (standard or URL-safe alphabet),
used as is, or any other string, whose SHA-256 becomes the key. In dev mode without it, a
random key is generated once into `<data dir>/secrets.key` (mode 0600) and reused.
`FABRIC_SECRETS_PREVIOUS_MASTER_KEYS` lists retired keys (comma-separated, same forms): values
they sealed still open, but new values are always sealed with the current key.
Each value gets a fresh 96-bit nonce and associated data naming the row it belongs to (for an
organization secret its organization and name, for a webhook signing secret the webhook), so
a ciphertext copied to another row does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fabric_server.settings import Settings
from fabric_server.storage import private_dir

log = logging.getLogger("fabric_server.secrets")

KEY_FILE = "secrets.key"
NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """A stored value cannot be opened: another master key sealed it, or it was altered."""


def derive_key(raw: str) -> bytes:
    """The 32-byte key a `FABRIC_SECRETS_MASTER_KEY` value stands for."""
    text = raw.strip().replace("-", "+").replace("_", "/")
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == 32:
        return decoded
    return hashlib.sha256(raw.encode("utf-8")).digest()


def key_id(key: bytes) -> str:
    """Names a key without revealing it: rows remember which key sealed them."""
    return hashlib.sha256(b"fabric-secrets-key-id:" + key).hexdigest()[:16]


def load_previous_keys(settings: Settings) -> list[bytes]:
    """The retired master keys of `FABRIC_SECRETS_PREVIOUS_MASTER_KEYS`, for opening only
    (blank entries and the spaces around each are ignored)."""
    if settings.secrets_previous_master_keys is None:
        return []
    raw = settings.secrets_previous_master_keys.get_secret_value()
    return [derive_key(part.strip()) for part in raw.split(",") if part.strip()]


def load_master_key(settings: Settings) -> bytes:
    """The master key from settings, or (dev mode) from the data dir's key file."""
    if settings.secrets_master_key:
        return derive_key(settings.secrets_master_key)
    if not settings.is_dev:
        raise RuntimeError("production mode needs FABRIC_SECRETS_MASTER_KEY to be set")
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by other users (mode %o); use chmod 600", path, mode)
    text = path.read_text(encoding="ascii").strip()
    if not text:
        raise RuntimeError(f"{path} is empty; restore it (secrets sealed with it are lost)")
    return derive_key(text)


def _create_key_file(path: Path) -> None:
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(base64.b64encode(os.urandom(32)).decode("ascii") + "\n")
        try:  # link() never replaces: when two processes start at once, the first key wins
            os.link(tmp, path)
            log.warning("generated a secrets master key in %s (dev mode)", path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


class SecretCipher:
    """Seals with the current master key; opens what it or one of the `previous` keys
    sealed, choosing the key by the `key_id` stored with the value."""

    def __init__(self, key: bytes, previous: Iterable[bytes] = ()) -> None:
        self._aead = _aead(key)
        self.key_id = key_id(key)
        self._openers = {key_id(old): _aead(old) for old in previous}
        self._openers[self.key_id] = self._aead

    @property
    def previous_key_ids(self) -> frozenset[str]:
        """The ids of the keys that open values but seal nothing new."""
        return frozenset(self._openers) - {self.key_id}

    def opens(self, key_id: str) -> bool:
        """Whether a value sealed with the key `key_id` names can be opened here."""
        return key_id in self._openers

    def seal(self, org_id: str, name: str, value: str) -> tuple[bytes, bytes]:
        """Seal an organization secret: (nonce, ciphertext)."""
        return self.seal_value(value, _aad(org_id, name))

    def open(self, org_id: str, name: str, nonce: bytes, ciphertext: bytes, key_id: str) -> str:
        return self.open_value(nonce, ciphertext, key_id, _aad(org_id, name), f"secret {name}")

    def seal_value(self, value: str, associated_data: bytes) -> tuple[bytes, bytes]:
        """Seal `value` under a fresh nonce: (nonce, ciphertext). It opens only with the same
        associated data, which should name the row that stores it."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, value.encode("utf-8"), associated_data)

    def open_value(
        self, nonce: bytes, ciphertext: bytes, key_id: str, associated_data: bytes, what: str
    ) -> str:
        """The plain value; `SecretUnreadable` (naming `what`, never the value) when a key
        that is neither current nor previous sealed it, or it was altered or moved to another
        row."""
        aead = self._openers.get(key_id)
        if aead is None:
            raise SecretUnreadable(f"{what} was sealed with another master key")
        try:
            plain = aead.decrypt(nonce, ciphertext, associated_data)
        except InvalidTag:
            raise SecretUnreadable(f"{what} does not open (altered or moved)") from None
        return plain.decode("utf-8")


class MasterKey:
    """The server's master key (and the previous ones it still opens with), loaded once
    when the server starts and shared by everything sealed at rest (organization secrets,
    webhook signing secrets)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cipher: SecretCipher | None = None

    def load(self) -> SecretCipher:
        """Load (dev mode: create) the key; later calls return the same cipher."""
        if self._cipher is None:
            cipher = SecretCipher(load_master_key(self.settings), load_previous_keys(self.settings))
            if cipher.previous_key_ids:
                log.info(
                    "sealing with master key %s; also opening values of previous keys %s",
                    cipher.key_id,
                    ", ".join(sorted(cipher.previous_key_ids)),
                )
            self._cipher = cipher
        return self._cipher

    @property
    def cipher(self) -> SecretCipher:
        if self._cipher is None:
            raise RuntimeError("the master key was not loaded (the server has not started)")
        return self._cipher


def _aead(key: bytes) -> AESGCM:
    if len(key) != 32:
        raise ValueError("AES-256 needs a 32-byte key")
    return AESGCM(key)


def _aad(org_id: str, name: str) -> bytes:
    return f"fabric-secret:{org_id}:{name}".encode()
