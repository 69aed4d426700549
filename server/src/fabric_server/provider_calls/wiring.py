"""Builds the provider-call use case every caller of a model provider goes through."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.assembly import Assembled, Platform
from fabric_server.budgets.service import BudgetService
from fabric_server.observability.tracing import Tracing
from fabric_server.provider_calls.use_case import ProviderCalls
from fabric_server.providers.registry import ProviderRegistry


@dataclass(kw_only=True)
class Calls(Assembled):
    calls: ProviderCalls


def assemble(
    platform: Platform, providers: ProviderRegistry, budgets: BudgetService, tracing: Tracing
) -> Calls:
    return Calls(calls=ProviderCalls(platform.db, providers, budgets, tracing))
