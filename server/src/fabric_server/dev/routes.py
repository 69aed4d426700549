"""Dev-only routes: the mail outbox (404 in production)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.errors import NotFound
from fabric_server.mail.outbox import list_outbox

router = APIRouter(prefix="/v1/dev", tags=["dev"], responses=ERROR_RESPONSES)


class MailOut(BaseModel):
    id: str
    to: str
    subject: str
    body: str
    created_at: dt.datetime


@router.get("/outbox", response_model=Envelope[list[MailOut]], summary="Mail sent (dev mode)")
async def outbox(
    request: Request,
    services: ServicesDep,
    _principal: PrincipalDep,
    to: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    if not services.settings.is_dev:
        raise NotFound(f"No route matches GET {request.url.path}")
    async with services.db.read() as session:
        mails = await list_outbox(session, to, limit)
        data = [
            MailOut(
                id=m.id, to=m.to_address, subject=m.subject, body=m.body, created_at=m.created_at
            )
            for m in mails
        ]
    return ok(request, data)
