"""Webhook signing secrets as a `SealedTable`, for master key rotation
(`fabric_server.secrets.rotation`)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.secrets.crypto import SecretCipher, SecretUnreadable
from fabric_server.secrets.rotation import Batch
from fabric_server.webhooks import repository
from fabric_server.webhooks.sealing import seal_secret, signing_secret


class WebhookSecretTable:
    label = "webhook signing secrets"

    async def count_by_key(self, session: AsyncSession) -> dict[str, int]:
        return await repository.count_by_secret_key(session)

    async def name_rows(
        self, session: AsyncSession, key_ids: Collection[str], limit: int
    ) -> list[str]:
        ids = await repository.secrets_sealed_with(session, key_ids, limit)
        return [f"webhook {webhook_id}" for webhook_id in ids]

    async def reseal_batch(
        self,
        session: AsyncSession,
        cipher: SecretCipher,
        key_ids: Collection[str],
        after: str,
        limit: int,
    ) -> Batch:
        rows = await repository.lock_secrets_sealed_with(session, key_ids, after, limit)
        resealed, unreadable = 0, []
        for webhook in rows:
            try:
                secret = signing_secret(webhook, cipher)
            except SecretUnreadable:
                unreadable.append(f"webhook {webhook.id}")
                continue
            sealed = seal_secret(cipher, webhook.id, secret)
            await repository.reseal_secret(
                session, webhook.id, sealed.nonce, sealed.ciphertext, sealed.key_id
            )
            resealed += 1
        return Batch(rows[-1].id if rows else None, resealed, unreadable)
