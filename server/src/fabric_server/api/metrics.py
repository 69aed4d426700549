"""`GET /metrics`: the Prometheus scrape, kept out of the public OpenAPI document.

Off in production unless `FABRIC_METRICS_ENABLED` or `FABRIC_METRICS_TOKEN` is set; on in
dev mode. With a token, `Authorization: Bearer <token>` is required (constant-time check).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

from fabric_server.api.deps import ServicesDep
from fabric_server.engine.gauges import gather
from fabric_server.errors import NotFound, Unauthorized
from fabric_server.observability.metrics import CONTENT_TYPE, scrape

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    settings = services.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if not settings.metrics_exposed:
        raise NotFound("Not found.")
    if token:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("A valid metrics bearer token is required.")
    state = await gather(services.db, services.handlers)
    return Response(scrape(state), media_type=CONTENT_TYPE)
