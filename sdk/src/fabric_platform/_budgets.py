"""Monthly spending limits of an organization, and this month's spend."""

from __future__ import annotations

from typing import Any, List, Optional, cast

from ._base import encode_path
from ._core import AsyncClientCore, SyncClientCore
from .types import Budget, Spending


def _budget_path(org_id: str) -> str:
    return encode_path("/v1/organizations/{}/budget", org_id)


def _spending_path(org_id: str) -> str:
    return encode_path("/v1/organizations/{}/usage/spending", org_id)


def _budget_body(
    monthly_limit_usd: Optional[float], alert_thresholds: Optional[List[float]]
) -> dict[str, Any]:
    body: dict[str, Any] = {"monthly_limit_usd": monthly_limit_usd}
    if alert_thresholds is not None:
        body["alert_thresholds"] = list(alert_thresholds)
    return body


class BudgetsMethods(SyncClientCore):
    def get_budget(self, org_id: str) -> Budget:
        """The monthly spending limit (None: no limit) and this month's spend (UTC)."""
        return cast(Budget, self._request("GET", _budget_path(org_id)))

    def set_budget(
        self,
        org_id: str,
        monthly_limit_usd: Optional[float],
        *,
        alert_thresholds: Optional[List[float]] = None,
    ) -> Budget:
        """Set the monthly limit in USD, or remove it with None (admins). Once the month's
        spend reaches it, paid provider calls raise `FabricBudgetExceededError`.
        ``alert_thresholds`` (shares of the limit, default ``[0.5, 0.8, 1.0]``) fire
        ``budget.threshold_reached`` events; None keeps the current ones."""
        body = _budget_body(monthly_limit_usd, alert_thresholds)
        return cast(Budget, self._request("PUT", _budget_path(org_id), body=body))

    def get_org_spending(self, org_id: str) -> Spending:
        """This month's spend so far, by UTC day and by provider, with the limit."""
        return cast(Spending, self._request("GET", _spending_path(org_id)))


class AsyncBudgetsMethods(AsyncClientCore):
    async def get_budget(self, org_id: str) -> Budget:
        """The monthly spending limit (None: no limit) and this month's spend (UTC)."""
        return cast(Budget, await self._request("GET", _budget_path(org_id)))

    async def set_budget(
        self,
        org_id: str,
        monthly_limit_usd: Optional[float],
        *,
        alert_thresholds: Optional[List[float]] = None,
    ) -> Budget:
        """Set the monthly limit in USD, or remove it with None (admins)."""
        body = _budget_body(monthly_limit_usd, alert_thresholds)
        return cast(Budget, await self._request("PUT", _budget_path(org_id), body=body))

    async def get_org_spending(self, org_id: str) -> Spending:
        """This month's spend so far, by UTC day and by provider, with the limit."""
        return cast(Spending, await self._request("GET", _spending_path(org_id)))
