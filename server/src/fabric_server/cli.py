"""`fabric-server serve | worker | migrate | rotate-secrets`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from fabric_server.app import create_app, start
from fabric_server.db.migrate import migrate
from fabric_server.runtime import Background
from fabric_server.secrets.rotation import (
    DEFAULT_BATCH_SIZE,
    Census,
    KeyRotation,
    RotationRefused,
)
from fabric_server.services import build_services
from fabric_server.settings import Settings
from fabric_server.storage import prepare_sqlite

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
    rotate = commands.add_parser(
        "rotate-secrets",
        help="re-seal organization and webhook secrets under the current master key",
        description="Re-seal every organization secret and webhook signing secret that a key "
        "of FABRIC_SECRETS_PREVIOUS_MASTER_KEYS sealed, under FABRIC_SECRETS_MASTER_KEY. "
        "Values are never printed.",
    )
    rotate.add_argument(
        "--check",
        action="store_true",
        help="change nothing: count the values per master key (exit status 1 while any are "
        "left to re-seal or sealed with an unknown key)",
    )
    rotate.add_argument(
        "--batch-size",
        type=_positive,
        default=DEFAULT_BATCH_SIZE,
        help=f"rows per transaction (default {DEFAULT_BATCH_SIZE})",
    )
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
    if args.command == "rotate-secrets":
        return asyncio.run(_rotate_secrets(settings, check=args.check, batch_size=args.batch_size))
    return asyncio.run(_migrate(settings))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


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
        prepare_sqlite(services.db.url)
    await migrate(services.db, cipher=services.master_key.load())
    await services.db.dispose()
    print("migrations applied")
    return 0


async def _rotate_secrets(settings: Settings, *, check: bool, batch_size: int) -> int:
    services = build_services(settings)
    try:
        rotation = KeyRotation(
            services.db,
            services.master_key.load(),
            services.sealed_tables,
            batch_size=batch_size,
        )
        if check:
            census = await rotation.census()
            _print_census(census)
            return 0 if census.rows("previous") + census.rows("unknown") == 0 else 1
        return await _rotate(rotation)
    finally:
        await services.db.dispose()


async def _rotate(rotation: KeyRotation) -> int:
    def progress(label: str, resealed: int) -> None:
        done[label] = done.get(label, 0) + resealed
        print(f"{label}: {resealed} re-sealed in this batch, {done[label]} so far", flush=True)

    done: dict[str, int] = {}
    try:
        report = await rotation.rotate(progress)
    except RotationRefused as refused:
        _print_refusal(refused)
        return 1
    for label, count in report.resealed.items():
        print(f"{label}: {count} re-sealed")
    if report.unreadable:
        failed = sum(len(rows) for rows in report.unreadable.values())
        print(
            f"fabric-server: {_values(failed)} did not open (altered, or copied from "
            "another row); left unchanged:",
            file=sys.stderr,
        )
        for rows in report.unreadable.values():
            for row in rows:
                print(f"  {row}", file=sys.stderr)
        print("Set those values again, or delete them.", file=sys.stderr)
        return 1
    total = sum(report.resealed.values())
    key = rotation.cipher.key_id
    print(f"{_values(total)} re-sealed; every value is sealed with the current key {key}")
    return 0


def _print_census(census: Census) -> None:
    labels = list(census.counts)
    widths = [len(label) for label in labels]
    header = "  ".join(f"{label:>{w}}" for label, w in zip(labels, widths, strict=True))
    print(f"{'key id':<16}  {'key':<8}  {header}")
    for key_id in census.key_ids():
        counts = "  ".join(
            f"{census.counts[label].get(key_id, 0):>{w}}"
            for label, w in zip(labels, widths, strict=True)
        )
        print(f"{key_id:<16}  {census.role(key_id):<8}  {counts}")
    left, unknown = census.rows("previous"), census.rows("unknown")
    if left:
        print(f"{_values(left)} to re-seal with `fabric-server rotate-secrets`")
    if unknown:
        print(f"{_values(unknown)} sealed with an unknown master key (cannot be opened)")
    if not left and not unknown:
        print("every value is sealed with the current key")


def _print_refusal(refused: RotationRefused) -> None:
    census = refused.census
    unknown = census.rows("unknown")
    err = sys.stderr
    print(
        f"fabric-server: refusing to rotate, nothing was changed: {_values(unknown)} "
        f"{'is' if unknown == 1 else 'are'} sealed with a master key that is neither "
        "FABRIC_SECRETS_MASTER_KEY nor in FABRIC_SECRETS_PREVIOUS_MASTER_KEYS",
        file=err,
    )
    for label, per_key in census.counts.items():
        keys = [(k, n) for k, n in per_key.items() if census.role(k) == "unknown" and n]
        if not keys:
            continue
        by_key = ", ".join(f"{n} under key {k}" for k, n in sorted(keys))
        print(f"  {label}: {by_key}", file=err)
        named = refused.named.get(label, [])
        for row in named:
            print(f"    {row}", file=err)
        more = sum(n for _, n in keys) - len(named)
        if more > 0:
            print(f"    … and {more} more", file=err)
    print(
        "Add the key that sealed them to FABRIC_SECRETS_PREVIOUS_MASTER_KEYS, or set those "
        "values again (or delete them), then run this again.",
        file=err,
    )


def _values(count: int) -> str:
    return f"{count} value" if count == 1 else f"{count} values"
