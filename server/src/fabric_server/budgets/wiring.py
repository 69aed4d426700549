"""Builds the budgets domain: monthly limits, running spend and threshold alerts."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.assembly import Assembled, Platform
from fabric_server.budgets.service import BudgetService


@dataclass(kw_only=True)
class Budgets(Assembled):
    service: BudgetService


def assemble(platform: Platform) -> Budgets:
    service = BudgetService(platform.access, platform.events)
    service.use_cache(platform.versions)
    return Budgets(service=service)
