"""`fabric-server serve | worker | migrate | backup | rotate-secrets`.

Configuration problems are found before anything starts and reported as one line on stderr
naming the setting and the fix, with exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy.engine import make_url

from fabric_server import __version__
from fabric_server.db.backup import backup_sqlite
from fabric_server.db.migrate import MigrationStatus
from fabric_server.observability.logs import configure_logging
from fabric_server.preflight import (
    ENV_FILE,
    ConfigError,
    bind_socket,
    check_data_dir,
    check_database,
    check_dev_mode_exposure,
    check_mail,
    check_secrets,
    database_label,
    load_settings,
)
from fabric_server.secrets.rotation import DEFAULT_BATCH_SIZE
from fabric_server.settings import Settings

log = logging.getLogger("fabric_server")
CONFIG_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line as one line, like a bad setting."""

    def error(self, message: str) -> NoReturn:
        self.exit(CONFIG_ERROR, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fabric-server",
        description="Fabric control plane. Settings come from FABRIC_* environment variables "
        "and from a .env file in the working directory (the environment wins).",
    )
    parser.add_argument("--version", action="version", version=f"fabric-server {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    serve = subcommands.add_parser("serve", help="run the API (and, by default, the workers)")
    serve.add_argument("--host", help="bind address (FABRIC_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port (FABRIC_PORT, default 3001)")
    serve.add_argument("--no-workers", action="store_true", help="API only; run workers apart")
    serve.add_argument(
        "--workers",
        type=_processes,
        dest="api_processes",
        help="API processes sharing the port (FABRIC_API_PROCESSES, default 1); each also runs "
        "workers unless --no-workers",
    )
    serve.add_argument(
        "--dev-on-network",
        action="store_true",
        help="dev mode on a non-loopback address (FABRIC_DEV_MODE_ON_NETWORK=true): every "
        "caller that reaches the port gets owner and platform-admin rights; trusted networks "
        "only",
    )
    worker = subcommands.add_parser("worker", help="run workers only, against the same database")
    worker.add_argument(
        "--health-port",
        type=_port,
        help="answer /healthz and /readyz on this port (FABRIC_WORKER_HEALTH_PORT; default: "
        "no listener)",
    )
    worker.add_argument(
        "--health-host", help="address of that listener (FABRIC_WORKER_HEALTH_HOST, 127.0.0.1)"
    )
    migrate_ = subcommands.add_parser("migrate", help="apply database migrations and exit")
    migrate_.add_argument(
        "--status",
        action="store_true",
        help="change nothing: show the database's revision and this version's newest (exit "
        "status 0 when up to date, 1 when not)",
    )
    backup = subcommands.add_parser(
        "backup",
        help="copy the SQLite database while the server runs (PostgreSQL: use pg_dump)",
    )
    backup.add_argument("target", type=Path, help="the new file to write")
    rotate = subcommands.add_parser(
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(_overrides(args))
        configure_logging(settings.log_level, settings.resolved_log_format)
        return _COMMANDS[args.command](settings, args)
    except ConfigError as problem:
        for line in str(problem).splitlines():
            print(f"fabric-server: {line}", file=sys.stderr)
        return CONFIG_ERROR


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    flags = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "run_workers": False if getattr(args, "no_workers", False) else None,
        "dev_mode_on_network": True if getattr(args, "dev_on_network", False) else None,
        "worker_health_port": getattr(args, "health_port", None),
        "worker_health_host": getattr(args, "health_host", None),
        "api_processes": getattr(args, "api_processes", None),
    }
    return {name: value for name, value in flags.items() if value is not None}


def _processes(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(
            f"expected a number of processes from 1 to 64, got {text!r}"
        )
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r} (a number from 1 to 65535)")
    return int(text)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _host_label(args: argparse.Namespace) -> str:
    return "--host" if getattr(args, "host", None) else "FABRIC_HOST"


def _note_env_file() -> None:
    if ENV_FILE.is_file():
        log.info("settings also read from %s", ENV_FILE.resolve())


def _prepare(settings: Settings, args: argparse.Namespace) -> None:
    """What every command that opens the database checks first."""
    check_secrets(settings, host_label=_host_label(args))
    check_data_dir(settings)


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    host_label = _host_label(args)
    check_dev_mode_exposure(settings, host_label=host_label)
    _prepare(settings, args)
    check_mail(settings)
    port_label = "--port" if args.port else "FABRIC_PORT"
    sock = bind_socket(settings.host, settings.port, host_label=host_label, port_label=port_label)
    try:
        asyncio.run(check_database(settings))
        from fabric_server import commands  # slow to import: only once the checks passed

        _note_env_file()
        return commands.serve(settings, sock)
    finally:
        sock.close()


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    _prepare(settings, args)
    probe: socket.socket | None = None
    if settings.worker_health_port is not None:
        probe = bind_socket(
            settings.worker_health_host,
            settings.worker_health_port,
            host_label="--health-host" if args.health_host else "FABRIC_WORKER_HEALTH_HOST",
            port_label="--health-port" if args.health_port else "FABRIC_WORKER_HEALTH_PORT",
        )
    try:
        asyncio.run(check_database(settings))
        from fabric_server import commands  # slow to import: only once the checks passed

        _note_env_file()
        return commands.run_worker(settings, probe)
    finally:
        if probe is not None:
            probe.close()


def _cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    if args.status:
        return _migration_status(settings)
    _prepare(settings, args)
    asyncio.run(check_database(settings))
    from fabric_server import commands  # slow to import: only once the checks passed

    return commands.apply_migrations(settings)


def _migration_status(settings: Settings) -> int:
    url = settings.resolved_database_url
    print(f"database  {make_url(url).render_as_string(hide_password=True)}")
    if url.startswith("sqlite") and not Path(make_url(url).database or "").exists():
        print("current   none (the database file does not exist yet)")
        print("`fabric-server migrate` (or starting the server) creates it")
        return 1
    status = asyncio.run(check_database(settings, allow_newer=True))
    _print_status(status)
    return 0 if status.up_to_date else 1


def _print_status(status: MigrationStatus) -> None:
    print(f"current   {', '.join(status.current) or 'none (never migrated)'}")
    print(f"head      {', '.join(status.heads)}")
    if status.up_to_date:
        print("up to date")
        return
    if status.unknown:
        print(
            f"{', '.join(status.unknown)} is unknown to Fabric {__version__}: a newer version "
            "migrated this database; run that version, or restore a backup from before"
        )
        return
    count = len(status.pending)
    print(
        f"{count} migration{'s' if count != 1 else ''} to apply with `fabric-server migrate`: "
        + ", ".join(status.pending)
    )


def _cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    url = settings.resolved_database_url
    if not url.startswith("sqlite"):
        raise ConfigError(
            "backup copies SQLite databases; back PostgreSQL up with pg_dump "
            "(see docs/operations.md, Backups)"
        )
    database = Path(make_url(url).database or "")
    target: Path = args.target
    if not database.exists():
        raise ConfigError(f"{database_label(settings)} does not exist: nothing to back up")
    if target.exists():
        raise ConfigError(f"{target} exists: give the backup a new file name")
    if not target.parent.is_dir():
        raise ConfigError(f"the directory of {target} does not exist")
    size = backup_sqlite(database, target)
    print(f"backed up {database} to {target} ({size} bytes)")
    if not settings.secrets_master_key:
        key = settings.data_dir / "secrets.key"
        print(f"keep a copy of {key} with it: the secrets stored in the database open only with it")
    return 0


def _cmd_rotate_secrets(settings: Settings, args: argparse.Namespace) -> int:
    _prepare(settings, args)
    asyncio.run(check_database(settings))
    from fabric_server import commands  # slow to import: only once the checks passed

    return commands.rotate_secrets(settings, check=args.check, batch_size=args.batch_size)


_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": _cmd_serve,
    "worker": _cmd_worker,
    "migrate": _cmd_migrate,
    "backup": _cmd_backup,
    "rotate-secrets": _cmd_rotate_secrets,
}
