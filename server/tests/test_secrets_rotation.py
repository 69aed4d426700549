"""Rotating the secrets master key: previous keys keep opening what they sealed."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from fabric_server.secrets.crypto import (
    MasterKey,
    SecretCipher,
    SecretUnreadable,
    derive_key,
    key_id,
    load_previous_keys,
)
from fabric_server.settings import DEFAULT_ORGANIZATION_ID as ORG
from fabric_server.settings import Settings

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.urlsafe_b64encode(bytes(range(100, 132))).decode().rstrip("=")
KEY_C = "an unrelated passphrase: never configured again"


def kid(raw: str) -> str:
    return key_id(derive_key(raw))


def test_previous_keys_open_but_never_seal() -> None:
    old, new = derive_key(KEY_A), derive_key(KEY_B)
    sealed_by_old = SecretCipher(old)
    nonce, ciphertext = sealed_by_old.seal(ORG, "NAME", "value")

    ring = SecretCipher(new, [old, old, new])
    assert ring.key_id == kid(KEY_B)
    assert ring.previous_key_ids == {kid(KEY_A)}
    assert [ring.opens(kid(key)) for key in (KEY_A, KEY_B, KEY_C)] == [True, True, False]
    assert ring.open(ORG, "NAME", nonce, ciphertext, kid(KEY_A)) == "value"
    with pytest.raises(SecretUnreadable, match="does not open"):
        ring.open(ORG, "OTHER", nonce, ciphertext, kid(KEY_A))  # bound to its row still
    resealed = ring.seal(ORG, "NAME", "value")
    assert SecretCipher(new).open(ORG, "NAME", *resealed, kid(KEY_B)) == "value"
    with pytest.raises(SecretUnreadable, match="another master key"):
        SecretCipher(new).open(ORG, "NAME", nonce, ciphertext, kid(KEY_A))


def test_previous_keys_setting(tmp_path: Path) -> None:
    assert load_previous_keys(Settings(data_dir=tmp_path)) == []
    assert load_previous_keys(Settings(data_dir=tmp_path, secrets_previous_master_keys="")) == []
    listed = Settings(data_dir=tmp_path, secrets_previous_master_keys=f" {KEY_A} ,, {KEY_C},")
    assert load_previous_keys(listed) == [derive_key(KEY_A), derive_key(KEY_C)]
    assert KEY_A not in repr(listed)
    # A passphrase with a comma cannot be listed; its derived key in base64 stands for it.
    passphrase = "old, with a comma"
    derived = base64.b64encode(hashlib.sha256(passphrase.encode()).digest()).decode()
    both = Settings(data_dir=tmp_path, secrets_previous_master_keys=f"{KEY_A},{derived}")
    assert load_previous_keys(both)[1] == derive_key(passphrase)


def test_dev_mode_generates_its_key_and_still_opens_previous_ones(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secrets_previous_master_keys=KEY_A)
    assert settings.is_dev
    cipher = MasterKey(settings).load()
    generated = (tmp_path / "secrets.key").read_text().strip()
    assert cipher.key_id == kid(generated)
    assert cipher.previous_key_ids == {kid(KEY_A)}
    nonce, ciphertext = SecretCipher(derive_key(KEY_A)).seal(ORG, "NAME", "value")
    assert cipher.open(ORG, "NAME", nonce, ciphertext, kid(KEY_A)) == "value"
