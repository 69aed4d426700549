"""`fabric-server serve | worker | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from fabric_server.app import create_app, start
from fabric_server.db.migrate import migrate
from fabric_server.runtime import Background
from fabric_server.services import build_services
from fabric_server.settings import Settings

log = logging.getLogger("fabric_server")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fabric-server", description="Fabric control plane")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API (and, by default, the workers)")
    serve.add_argument("--host", help="bind address (FABRIC_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (FABRIC_PORT, default 3001)")
    serve.add_argument("--no-workers", action="store_true", help="API only; run workers apart")
    commands.add_parser("worker", help="run workers only, against the same database")
    commands.add_parser("migrate", help="apply database migrations and exit")
    args = parser.parse_args(argv)

    overrides: dict[str, object] = {}
    if args.command == "serve":
        if args.host:
            overrides["host"] = args.host
        if args.port:
            overrides["port"] = args.port
        if args.no_workers:
            overrides["run_workers"] = False
    settings = Settings(**overrides)  # type: ignore[arg-type]
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        check_production(settings)
    except SystemExit as exc:
        print(f"fabric-server: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(settings)
    if args.command == "worker":
        return asyncio.run(_worker(settings))
    return asyncio.run(_migrate(settings))


def check_production(settings: Settings) -> None:
    """Production refuses to start without its secrets."""
    if settings.env != "production":
        return
    missing = [
        name
        for name, value in (
            ("FABRIC_SIGNING_SECRET", settings.signing_secret),
            ("FABRIC_SECRETS_MASTER_KEY", settings.secrets_master_key),
        )
        if not value
    ]
    if missing:
        raise SystemExit(f"production mode needs {', '.join(missing)} to be set")


def _serve(settings: Settings) -> int:
    import uvicorn

    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        timeout_graceful_shutdown=15,
    )
    return 0


async def _worker(settings: Settings) -> int:
    services = build_services(settings)
    await start(services)
    background = Background(services, run_workers=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await background.start()
    await stop.wait()
    log.info("stopping worker")
    await background.stop()
    await services.providers.aclose()
    await services.db.dispose()
    return 0


async def _migrate(settings: Settings) -> int:
    services = build_services(settings)
    if services.db.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate(services.db, cipher=services.master_key.load())
    await services.db.dispose()
    print("migrations applied")
    return 0
