"""HTTP routes for an organization's monthly budget and this month's spend."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.audit.actions import audited
from fabric_server.budgets.schemas import BudgetOut, BudgetSet, SpendingOut

router = APIRouter(prefix="/v1/organizations/{org_id}", tags=["budgets"], responses=ERROR_RESPONSES)


@router.get(
    "/budget",
    response_model=Envelope[BudgetOut],
    summary="The monthly spending limit and this month's spend (usage.read)",
)
async def get_budget(
    org_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        data = await services.budgets.view(session, principal, org_id)
    return ok(request, BudgetOut.model_validate(data))


@router.put(
    "/budget",
    response_model=Envelope[BudgetOut],
    summary="Set or remove (null) the monthly spending limit (budget.update: admins)",
)
@audited("budget.set")
async def set_budget(
    org_id: str, body: BudgetSet, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        data = await services.budgets.set(
            session, principal, org_id, body.monthly_limit_usd, body.alert_thresholds
        )
    return ok(request, BudgetOut.model_validate(data))


@router.get(
    "/usage/spending",
    response_model=Envelope[SpendingOut],
    summary="This month's spend so far, by day and by provider (usage.read)",
)
async def get_spending(
    org_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.read() as session:
        data = await services.budgets.spending(session, principal, org_id)
    return ok(request, SpendingOut.model_validate(data))
