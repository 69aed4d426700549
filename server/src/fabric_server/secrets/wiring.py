"""Builds the secrets domain: the organization secret store sealed with the master key."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.assembly import Assembled, Platform
from fabric_server.secrets.crypto import MasterKey
from fabric_server.secrets.rotation import OrgSecretTable, SealedTable
from fabric_server.secrets.service import SecretStore


@dataclass(kw_only=True)
class Secrets(Assembled):
    store: SecretStore
    #: Re-sealed by master key rotation.
    sealed_tables: list[SealedTable]


def assemble(platform: Platform, master_key: MasterKey) -> Secrets:
    return Secrets(
        store=SecretStore(master_key, platform.access, platform.events),
        sealed_tables=[OrgSecretTable()],
    )
