"""Health, liveness and readiness."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from fabric_server import __version__
from fabric_server.api.deps import ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.errors import Unavailable

router = APIRouter(tags=["system"], responses=ERROR_RESPONSES)
log = logging.getLogger("fabric_server.api")


class Health(BaseModel):
    status: str
    version: str


class Readiness(BaseModel):
    status: str
    database: str


@router.get("/v1/health", response_model=Envelope[Health], summary="Service health")
async def health(request: Request) -> JSONResponse:
    return ok(request, Health(status="ok", version=__version__))


@router.get("/healthz", response_model=Envelope[Health], summary="Liveness")
async def healthz(request: Request) -> JSONResponse:
    return ok(request, Health(status="ok", version=__version__))


@router.get("/readyz", response_model=Envelope[Readiness], summary="Readiness (checks the DB)")
async def readyz(request: Request, services: ServicesDep) -> JSONResponse:
    try:
        await services.db.ping()
    except Exception as exc:
        log.warning("readiness check failed: database unreachable (%s)", type(exc).__name__)
        raise Unavailable("The database is unreachable.") from exc
    return ok(request, Readiness(status="ready", database=services.db.dialect))
