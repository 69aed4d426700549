"""webhook secrets: sealed with the master key instead of stored in clear

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 22:10:00.000000

Existing secrets are sealed here, with the master key the server hands to its migrations
(`fabric_server.db.migrate`). Without a key — only possible when migrating outside the server
and its `fabric-server migrate` command — the upgrade refuses to run if there is anything to
seal. The downgrade opens them again (and needs the key in the same way).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

from fabric_server.secrets.crypto import SecretCipher
from fabric_server.webhooks.sealing import SealedSecret, open_secret, seal_secret

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_webhooks = sa.table(
    "webhooks",
    sa.column("id", sa.String),
    sa.column("secret", sa.String),
    sa.column("secret_nonce", sa.LargeBinary),
    sa.column("secret_ciphertext", sa.LargeBinary),
    sa.column("secret_key_id", sa.String),
)


def _cipher(step: str) -> SecretCipher:
    config = op.get_context().config
    cipher = config.attributes.get("cipher") if config is not None else None
    if not isinstance(cipher, SecretCipher):
        raise RuntimeError(
            f"{step} needs the secrets master key: run `fabric-server migrate` (or start the "
            "server) with the FABRIC_SECRETS_MASTER_KEY it uses"
        )
    return cipher


@contextmanager
def _overwriting_deleted_content() -> Iterator[None]:
    """SQLite: zero the pages that held the clear secrets instead of leaving them free."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    before = bind.exec_driver_sql("PRAGMA secure_delete").scalar()
    bind.exec_driver_sql("PRAGMA secure_delete=ON")
    try:
        yield
    finally:
        bind.exec_driver_sql(f"PRAGMA secure_delete={int(before or 0)}")


def upgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret_nonce", sa.LargeBinary(length=12), nullable=True))
        batch_op.add_column(sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("secret_key_id", sa.String(length=16), nullable=True))

    bind = op.get_bind()
    with _overwriting_deleted_content():
        rows = bind.execute(sa.select(_webhooks.c.id, _webhooks.c.secret)).all()
        if rows:
            cipher = _cipher("sealing the existing webhook signing secrets")
            for webhook_id, secret in rows:
                sealed = seal_secret(cipher, webhook_id, secret)
                bind.execute(
                    _webhooks.update()
                    .where(_webhooks.c.id == webhook_id)
                    .values(
                        secret_nonce=sealed.nonce,
                        secret_ciphertext=sealed.ciphertext,
                        secret_key_id=sealed.key_id,
                    )
                )
        with op.batch_alter_table("webhooks", schema=None) as batch_op:
            batch_op.alter_column(
                "secret_nonce", existing_type=sa.LargeBinary(length=12), nullable=False
            )
            batch_op.alter_column(
                "secret_ciphertext", existing_type=sa.LargeBinary(), nullable=False
            )
            batch_op.alter_column(
                "secret_key_id", existing_type=sa.String(length=16), nullable=False
            )
            batch_op.drop_column("secret")


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret", sa.String(length=256), nullable=True))

    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            _webhooks.c.id,
            _webhooks.c.secret_nonce,
            _webhooks.c.secret_ciphertext,
            _webhooks.c.secret_key_id,
        )
    ).all()
    if rows:
        cipher = _cipher("opening the webhook signing secrets for the older schema")
        for webhook_id, nonce, ciphertext, key_id in rows:
            secret = open_secret(cipher, webhook_id, SealedSecret(nonce, ciphertext, key_id))
            bind.execute(
                _webhooks.update().where(_webhooks.c.id == webhook_id).values(secret=secret)
            )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.alter_column("secret", existing_type=sa.String(length=256), nullable=False)
        batch_op.drop_column("secret_key_id")
        batch_op.drop_column("secret_ciphertext")
        batch_op.drop_column("secret_nonce")
