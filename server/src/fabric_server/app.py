"""The ASGI application: `create_app(settings)`; nothing happens at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

from fabric_server import __version__
from fabric_server.access import key_routes as api_key_routes
from fabric_server.access import me_routes
from fabric_server.access import routes as access_routes
from fabric_server.api import metrics as metrics_routes
from fabric_server.api import system
from fabric_server.api.body_guard import JsonBodyGuard
from fabric_server.api.body_limit import BodySizeLimit
from fabric_server.api.dev_guard import DevModeGuard
from fabric_server.api.docs import install_docs
from fabric_server.api.handlers import install_error_handlers
from fabric_server.api.middleware import RequestContextMiddleware
from fabric_server.api.openapi import install_openapi
from fabric_server.api.response_check import ResponseModelCheck
from fabric_server.audit import routes as audit_routes
from fabric_server.auth import routes as auth_routes
from fabric_server.budgets import routes as budget_routes
from fabric_server.db.migrate import migrate
from fabric_server.dev import routes as dev_routes
from fabric_server.events import routes as event_routes
from fabric_server.galleries import routes as gallery_routes
from fabric_server.galleries.seed import seed_sample_galleries
from fabric_server.jobs import routes as job_routes
from fabric_server.mail import require_mail_delivery
from fabric_server.observability.access_log import AccessLogMiddleware
from fabric_server.observability.middleware import MetricsMiddleware
from fabric_server.observability.tracing import telemetry_config
from fabric_server.orgs import invitation_routes, limits_routes
from fabric_server.orgs import routes as org_routes
from fabric_server.orgs.repository import seed_dev
from fabric_server.providers import routes as provider_routes
from fabric_server.runtime import Background
from fabric_server.schedules import routes as schedule_routes
from fabric_server.secrets import routes as secret_routes
from fabric_server.services import Services, build_services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, Settings
from fabric_server.storage import prepare_sqlite
from fabric_server.usage import routes as usage_routes
from fabric_server.webhooks import routes as webhook_routes
from fabric_server.workers import routes as worker_routes
from fabric_server.workflows import definitions_routes as workflow_definition_routes
from fabric_server.workflows import runs_routes as workflow_run_routes

log = logging.getLogger("fabric_server")


# The advisory lock taken while the dev seed is written (any constant of our own).
_DEV_SEED_LOCK_KEY = 0x0FAB_5EED


async def start(services: Services) -> None:
    """Prepare the database: migrations, and the dev seed in dev mode."""
    settings = services.settings
    if services.db.is_sqlite:
        prepare_sqlite(services.db.url)
    # The master key first: migrations may seal values that were stored in clear before.
    cipher = services.master_key.load()
    await migrate(services.db, cipher=cipher)
    services.auth.start()
    if settings.is_dev:
        async with services.db.write() as session:
            if not services.db.is_sqlite:
                # API processes starting together seed one at a time (each checks, then
                # inserts what is missing): the second finds the first's rows.
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": _DEV_SEED_LOCK_KEY}
                )
            await seed_dev(session)
            await seed_sample_galleries(session)
        log.warning(
            "DEV MODE: requests without credentials act as the dev owner of organization %s, "
            "and X-Principal-Id is trusted. Set FABRIC_ENV=production to turn this off.",
            DEFAULT_ORGANIZATION_ID,
        )


def _warn_dev_mode_on_network(settings: Settings) -> None:
    rule = "!" * 78
    log.warning(
        "\n%s\nDEV MODE ON A NETWORK ADDRESS (%s:%d, FABRIC_DEV_MODE_ON_NETWORK=true)\n"
        "Every caller that reaches this port, without credentials, acts as the owner of\n"
        "organization %s and as a platform administrator,\nand may act as anyone "
        "through X-Principal-Id. Use it on a trusted network only.\n%s",
        rule,
        settings.host,
        settings.port,
        DEFAULT_ORGANIZATION_ID,
        rule,
    )


def begin_shutdown(app: FastAPI) -> None:
    """The server stopped accepting connections: end the open event streams now (each gets
    a `reconnect` frame) and stop the workers claiming, so their grace period runs alongside
    the server's instead of after it."""
    services: Services = app.state.services
    services.hub.end_streams()
    background = getattr(app.state, "background", None)
    if isinstance(background, Background):
        background.begin_stop()


def create_probe_app(services: Services) -> FastAPI:
    """`/healthz`, `/readyz` and `/v1/health` alone, answered as the API answers them (the
    probes of a worker-only process)."""
    app = FastAPI(
        title="Fabric worker",
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry=telemetry_config(services.tracing),
    )
    app.state.services = services
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.include_router(system.router)
    app.include_router(metrics_routes.router)
    return app


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    settings = settings or (services.settings if services else Settings())
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        require_mail_delivery(settings)
        await start(services)
        if settings.is_dev and not settings.on_loopback:
            _warn_dev_mode_on_network(settings)
        background = Background(services, run_workers=settings.run_workers)
        app.state.background = background
        await background.start()
        try:
            yield
        finally:
            await background.stop()
            await services.writer.close()
            await services.mailer.aclose()
            await services.providers.aclose()
            await services.db.dispose()
            services.tracing.shutdown()

    app = FastAPI(
        title="Fabric",
        version=__version__,
        description="Fabric control plane: jobs, workflows, schedules, events and webhooks.",
        lifespan=lifespan,
        # `/docs` is served from local assets (api/docs.py); ReDoc would need a CDN.
        docs_url=None,
        redoc_url=None,
        telemetry=telemetry_config(services.tracing),
    )
    app.state.services = services
    install_error_handlers(app)
    # Added first, so it runs inside the request context (ids, the error net).
    if settings.check_responses:
        app.add_middleware(ResponseModelCheck)
    app.add_middleware(JsonBodyGuard, max_depth=settings.json_max_depth)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    if settings.is_dev:
        app.add_middleware(
            DevModeGuard,
            check_host=settings.on_loopback,
            allowed_hosts=settings.dev_allowed_hosts,
        )
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.include_router(system.router)
    app.include_router(metrics_routes.router)
    app.include_router(auth_routes.router)
    app.include_router(job_routes.router)
    app.include_router(event_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(workflow_definition_routes.router)
    app.include_router(workflow_run_routes.router)
    app.include_router(provider_routes.router)
    app.include_router(usage_routes.router)
    app.include_router(budget_routes.router)
    app.include_router(gallery_routes.router)
    app.include_router(webhook_routes.router)
    app.include_router(schedule_routes.router)
    app.include_router(dev_routes.router)
    app.include_router(org_routes.router)
    app.include_router(invitation_routes.router)
    app.include_router(me_routes.router)
    app.include_router(access_routes.router)
    app.include_router(api_key_routes.router)
    app.include_router(secret_routes.router)
    app.include_router(worker_routes.router)
    app.include_router(limits_routes.router)
    install_docs(app)
    install_openapi(
        app,
        password_min_length=settings.password_min_length,
        operations=services.workflows.operations.spellings(),
    )
    return app
