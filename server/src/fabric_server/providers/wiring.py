"""Builds the providers domain: the registry of model providers, routing and prices."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.assembly import Assembled, Platform
from fabric_server.providers.credentials import CredentialSource
from fabric_server.providers.registry import ProviderRegistry
from fabric_server.providers.setup import build_registry


@dataclass(kw_only=True)
class Providers(Assembled):
    registry: ProviderRegistry


def assemble(platform: Platform, org_secrets: CredentialSource) -> Providers:
    """`org_secrets`: where an organization's own provider keys are read (before the
    server's settings)."""
    registry = build_registry(platform.settings, org_secrets=org_secrets)
    registry.use_cache(platform.versions)
    return Providers(registry=registry)
