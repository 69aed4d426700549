"""Webhook signing secrets at rest: sealed with the server's master key (AES-256-GCM, the
scheme of organization secrets). The associated data names the webhook, so a ciphertext
copied into another webhook's row does not open.

The plain secret exists only in memory: in the answer that creates the webhook, and while a
delivery is being signed.
"""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.secrets.crypto import SecretCipher
from fabric_server.webhooks.models import Webhook


@dataclass(frozen=True)
class SealedSecret:
    nonce: bytes
    ciphertext: bytes
    key_id: str


def _associated_data(webhook_id: str) -> bytes:
    return f"fabric-webhook-secret:{webhook_id}".encode()


def seal_secret(cipher: SecretCipher, webhook_id: str, secret: str) -> SealedSecret:
    nonce, ciphertext = cipher.seal_value(secret, _associated_data(webhook_id))
    return SealedSecret(nonce, ciphertext, cipher.key_id)


def open_secret(cipher: SecretCipher, webhook_id: str, sealed: SealedSecret) -> str:
    """The plain secret; `SecretUnreadable` when another master key sealed it, or the row was
    altered or copied from another webhook."""
    return cipher.open_value(
        sealed.nonce,
        sealed.ciphertext,
        sealed.key_id,
        _associated_data(webhook_id),
        f"the signing secret of webhook {webhook_id}",
    )


def set_secret(webhook: Webhook, cipher: SecretCipher, secret: str) -> None:
    """Seal `secret` into the webhook's row (its id must be set)."""
    sealed = seal_secret(cipher, webhook.id, secret)
    webhook.secret_nonce = sealed.nonce
    webhook.secret_ciphertext = sealed.ciphertext
    webhook.secret_key_id = sealed.key_id


def signing_secret(webhook: Webhook, cipher: SecretCipher) -> str:
    sealed = SealedSecret(webhook.secret_nonce, webhook.secret_ciphertext, webhook.secret_key_id)
    return open_secret(cipher, webhook.id, sealed)
