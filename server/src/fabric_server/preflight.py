"""Checks made before a command starts anything (migrations, workers, the scheduler).

Each problem becomes a `ConfigError` whose message is one line naming the setting and the
fix; `fabric-server` prints it and exits with status 2, instead of a traceback from deep
inside start-up.
"""

from __future__ import annotations

import asyncio
import errno
import getpass
import os
import re
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.engine import make_url

from fabric_server import __version__
from fabric_server.db.database import Database
from fabric_server.db.migrate import MigrationStatus, migration_status
from fabric_server.settings import Settings

ENV_FILE = Path(".env")
DATABASE_TIMEOUT_SECONDS = 10.0
# Values of these settings are never repeated in a message.
_SENSITIVE = ("secret", "key", "password", "token", "database_url")


class ConfigError(Exception):
    """A configuration problem; the message says which setting and how to fix it."""


def env_name(field: str) -> str:
    """The environment variable of a setting."""
    return f"FABRIC_{field.upper()}"


def load_settings(overrides: Mapping[str, Any], *, env_file: Path | None = ENV_FILE) -> Settings:
    """Settings from `overrides` (command-line flags), then `FABRIC_*` variables, then the
    `.env` file of the working directory; a bad value is a `ConfigError`."""
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(error) for error in exc.errors())) from None
    except SettingsError as exc:
        found = re.search(r'field "(\w+)"', str(exc))
        name = env_name(found.group(1)) if found else "a FABRIC_* variable"
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise ConfigError(f"{name} is not valid JSON{cause}") from None


def _describe(error: Mapping[str, Any]) -> str:
    location = [str(part) for part in error["loc"]]
    field = location[0] if location else "?"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    inner = ".".join(location[1:])
    if error["type"] == "bool_parsing":
        message += " (true or false)"
    elif field.endswith("port") and not inner:
        message += " (a port number, 1 to 65535)"
    detail = f"{inner}: {message}" if inner else message
    value = error.get("input")
    shown = "" if any(word in field for word in _SENSITIVE) or inner else f"={value!r}"
    return f"{env_name(field)}{shown} is not valid: {detail}"


def _setting(label: str, value: object) -> str:
    """`--host 0.0.0.0` or `FABRIC_HOST=0.0.0.0`, as the user gave it."""
    return f"{label} {value}" if label.startswith("--") else f"{label}={value}"


def check_dev_mode_exposure(settings: Settings, *, host_label: str) -> None:
    """Dev mode hands owner and platform-admin rights to anonymous callers: on an address
    other machines reach, it needs `FABRIC_DEV_MODE_ON_NETWORK=true` as well."""
    if not settings.is_dev or settings.on_loopback or settings.dev_mode_on_network:
        return
    raise ConfigError(
        f"dev mode on {_setting(host_label, settings.host)} would give every caller that "
        "reaches it owner and platform-admin rights without credentials: bind to 127.0.0.1, "
        "or accept that on a trusted network with FABRIC_DEV_MODE_ON_NETWORK=true "
        "(fabric-server serve --dev-on-network)"
    )


def check_mail(settings: Settings) -> None:
    """An API outside dev mode needs a safe way to mail sign-in and invitation links."""
    problem = settings.mail_delivery_problem
    if problem is not None:
        raise ConfigError(problem)


def check_secrets(settings: Settings, *, host_label: str) -> None:
    """Outside dev mode the server needs its production secrets."""
    if settings.is_dev:
        return
    missing = [
        name
        for name, value in (
            ("FABRIC_SIGNING_SECRET", settings.signing_secret),
            ("FABRIC_SECRETS_MASTER_KEY", settings.secrets_master_key),
        )
        if not value
    ]
    if not missing:
        return
    needs = f"needs {' and '.join(missing)} to be set"
    if settings.env == "production":
        raise ConfigError(f"production mode (FABRIC_ENV=production) {needs}")
    if settings.dev_mode is False:
        raise ConfigError(f"with FABRIC_DEV_MODE=false the server {needs}")
    raise ConfigError(
        f"{_setting(host_label, settings.host)} is not a loopback address, so dev mode is off "
        f"and the server {needs} (production settings, see the README's Configuration); on a "
        "trusted network only, dev mode can serve there instead with "
        "FABRIC_DEV_MODE_ON_NETWORK=true (serve --dev-on-network), which gives every caller "
        "owner rights"
    )


def check_data_dir(settings: Settings) -> None:
    """The directories the server writes to exist (or can be made) and are writable."""
    if settings.database_url is None:
        _writable_directory(settings.data_dir, "FABRIC_DATA_DIR", create=True)
    elif settings.resolved_database_url.startswith("sqlite"):
        path = Path(make_url(settings.resolved_database_url).database or "")
        _writable_directory(path.parent, "the directory of FABRIC_DATABASE_URL", create=False)
    if settings.is_dev and not (settings.signing_secret and settings.secrets_master_key):
        # Dev mode keeps its generated signing secret and master key there.
        _writable_directory(settings.data_dir, "FABRIC_DATA_DIR", create=True)


def _writable_directory(path: Path, label: str, *, create: bool) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{label} ({path}) is a file, not a directory: point it at a directory")
    if not path.exists():
        if not create:
            raise ConfigError(f"{label} ({path}) does not exist: create it or fix the path")
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(
                f"cannot create {label} ({path}): {exc.strerror}; create it, or choose a "
                f"directory the user {_user()} may write to"
            ) from None
    try:
        handle, probe = tempfile.mkstemp(dir=path, prefix=".fabric-write-check-")
    except OSError as exc:
        raise ConfigError(
            f"{label} ({path}) is not writable by the user {_user()} ({exc.strerror}): fix its "
            "permissions or choose another directory"
        ) from None
    os.close(handle)
    os.unlink(probe)


def _user() -> str:
    try:
        return f"{getpass.getuser()} (uid {os.getuid()})"
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def bind_socket(host: str, port: int, *, host_label: str, port_label: str) -> socket.socket:
    """A socket bound to `host:port`, for the server to listen on (so the port is known to be
    ours before anything else starts)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(
            f"{_setting(host_label, host)} is not an address of this machine ({exc.strerror}): use "
            "127.0.0.1, 0.0.0.0 (every interface) or one of its addresses"
        ) from None
    # IPv4 first: `localhost` may resolve to ::1 first, which IPv4 clients cannot reach.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: a response is several small writes, and Nagle's
    # algorithm meeting the client's delayed ACK would hold the last one for ~40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(_bind_problem(exc, host, port, host_label, port_label)) from None
    sock.set_inheritable(True)
    return sock


def _bind_problem(exc: OSError, host: str, port: int, host_label: str, port_label: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use ({port_label}): stop the process that "
            f"listens there, or choose another port with {port_label}"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{_setting(host_label, host)} is not an address of this machine: use 127.0.0.1, "
            "0.0.0.0 (every interface) or one of its addresses"
        )
    if exc.errno == errno.EACCES:
        return f"port {port} ({port_label}) needs privileges this user lacks: use a port above 1023"
    return f"cannot listen on {host}:{port} ({host_label}, {port_label}): {exc.strerror}"


def database_label(settings: Settings) -> str:
    """The database as messages name it, without its password."""
    shown = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    if settings.database_url is None:
        return f"the SQLite database in FABRIC_DATA_DIR ({shown})"
    return f"the database of FABRIC_DATABASE_URL ({shown})"


async def check_database(
    settings: Settings, *, timeout: float = DATABASE_TIMEOUT_SECONDS, allow_newer: bool = False
) -> MigrationStatus:
    """Connect once: the database answers, and (unless `allow_newer`) its schema is not
    newer than this version."""
    label = database_label(settings)
    db = Database(settings.resolved_database_url)
    try:
        async with asyncio.timeout(timeout):
            status = await migration_status(db)
    except TimeoutError:
        raise ConfigError(
            f"{label} did not answer within {timeout:g} s: check the host and port, and that "
            "the database server runs"
        ) from None
    except Exception as exc:
        hint = (
            "check that the directory exists and is writable"
            if db.is_sqlite
            else "check that the database server runs, and the URL's host, port, user, "
            "password and database name"
        )
        raise ConfigError(f"cannot open {label}: {_root_cause(exc)}; {hint}") from None
    finally:
        await db.dispose()
    if status.unknown and not allow_newer:
        raise ConfigError(
            f"{label} is at revision {', '.join(status.unknown)}, which Fabric {__version__} "
            "does not know (a newer version migrated it): run that version, or restore a "
            "backup taken before the upgrade"
        )
    return status


def _root_cause(exc: BaseException) -> str:
    """The innermost error behind a driver or SQLAlchemy wrapper, on one line."""
    seen: set[int] = set()
    inner: BaseException = exc
    while id(inner) not in seen:
        seen.add(id(inner))
        nested = getattr(inner, "orig", None) or inner.__cause__
        if not isinstance(nested, BaseException):
            break
        inner = nested
    return " ".join(str(inner).split()) or type(inner).__name__
