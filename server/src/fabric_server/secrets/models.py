"""The table of organization secrets: AES-256-GCM ciphertexts, never plaintext."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fabric_server.db.base import Base
from fabric_server.db.types import new_id, utcnow


class OrgSecret(Base):
    """One named secret of an organization.

    `ciphertext` is AES-256-GCM over the value with a fresh `nonce`, the associated data
    binding it to its organization and name; `key_id` names the master key that sealed it.
    """

    __tablename__ = "org_secrets"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(String(36))
    # Who set the current value (the value's author decides, for a provider endpoint,
    # whether the organization's key may be sent there).
    updated_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
