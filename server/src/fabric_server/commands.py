"""What the `fabric-server` commands run once their configuration passed the checks.

Kept apart from `fabric_server.cli`: importing the app takes seconds, and `--help`,
`--version` and configuration errors answer without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import signal
import socket
import sys
import threading

import uvicorn

from fabric_server.app import begin_shutdown, create_app, start
from fabric_server.db.migrate import migrate
from fabric_server.observability import metrics
from fabric_server.observability.logs import configure_logging
from fabric_server.runtime import Background
from fabric_server.secrets.rotation import Census, KeyRotation, RotationRefused
from fabric_server.services import build_services
from fabric_server.serving import FabricServer, ProbeListener, connection_options
from fabric_server.settings import Settings
from fabric_server.storage import prepare_sqlite

log = logging.getLogger("fabric_server")


def serve(settings: Settings, sock: socket.socket) -> int:
    """Run the API (and its background work) on `sock` until SIGINT or SIGTERM; in
    `settings.api_processes` processes sharing the socket when more than one."""
    if settings.api_processes > 1:
        return serve_processes(settings, sock)
    return _serve_one(settings, sock)


def serve_processes(settings: Settings, sock: socket.socket) -> int:
    """Run `settings.api_processes` API processes on `sock` (each with its own caches and
    group-commit writer, kept exact through the database) and supervise them: one that dies
    is started again; SIGINT or SIGTERM stops them all, each shutting down gracefully."""
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start() -> multiprocessing.process.BaseProcess:
        child = context.Process(target=_serve_one, args=(settings, sock), name="fabric-api")
        child.start()
        return child

    def stop(signum: int, _frame: object) -> None:
        stopping.set()
        for child in children:
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signum)

    # One scrape adds up all API processes (PROMETHEUS_MULTIPROC_DIR): start from zero.
    metrics.clear_multiprocess_dir()
    children = [start() for _ in range(settings.api_processes)]
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    log.info("started %d API processes", len(children))
    while not stopping.is_set():
        for index, child in enumerate(children):
            if not child.is_alive() and not stopping.is_set():
                log.warning(
                    "API process %s exited (%s); starting another", child.pid, child.exitcode
                )
                if child.pid is not None:
                    metrics.process_exited(child.pid)
                children[index] = start()
        stopping.wait(0.5)
    for child in children:
        child.join()
    return 0


def _serve_one(settings: Settings, sock: socket.socket) -> int:
    # Again here: a process started by `serve_processes` does not inherit the parent's.
    configure_logging(settings.log_level, settings.resolved_log_format)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Through the root logger, in the server's format; the app writes the access log.
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds),
        **connection_options(settings),
    )
    server = FabricServer(config, on_shutdown=lambda: begin_shutdown(app))
    # Ctrl+C: uvicorn shuts down gracefully, then raises KeyboardInterrupt again.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return 0


def run_worker(settings: Settings, probe: socket.socket | None) -> int:
    """Run workers (and, given `probe`, the health listener) until SIGINT or SIGTERM."""
    return asyncio.run(_worker(settings, probe))


async def _worker(settings: Settings, probe: socket.socket | None) -> int:
    services = build_services(settings)
    await start(services)
    background = Background(services, run_workers=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await background.start()
    listener = ProbeListener(services, probe) if probe is not None else None
    if listener is not None:
        await listener.start()
    await stop.wait()
    log.info("stopping worker")
    await background.stop()
    if listener is not None:
        await listener.stop()  # live until the work is handed back
    await services.providers.aclose()
    await services.db.dispose()
    services.tracing.shutdown()
    return 0


def apply_migrations(settings: Settings) -> int:
    """Bring the schema to the newest revision."""
    return asyncio.run(_migrate(settings))


async def _migrate(settings: Settings) -> int:
    services = build_services(settings)
    if services.db.is_sqlite:
        prepare_sqlite(services.db.url)  # created private (0600), before SQLite creates it
    try:
        await migrate(services.db, cipher=services.master_key.load())
    finally:
        await services.db.dispose()
    print("migrations applied")
    return 0


def rotate_secrets(settings: Settings, *, check: bool, batch_size: int) -> int:
    """Re-seal stored secrets under the current master key (`check`: only count them)."""
    return asyncio.run(_rotate_secrets(settings, check=check, batch_size=batch_size))


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
