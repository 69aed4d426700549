"""Files the server keeps in its data dir are for its own user only.

The data dir holds the SQLite database (accounts, sessions, sealed secrets), the dev mail
outbox (sign-in links) and generated keys, so it is created 0700 and the files in it 0600
whatever the umask (which can only narrow these modes). Existing files keep their mode; a
warning names an existing database file that others can read.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger("fabric_server")

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) readable by this user only; returns it."""
    if not path.exists():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return path


def private_file(path: Path) -> Path:
    """Create an empty `path` with mode 0600 unless it exists; returns it."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        warn_if_shared(path)
    else:
        os.close(fd)
    return path


def prepare_sqlite(database_url: str) -> None:
    """Create the SQLite database file (and its directory) privately before the first
    connection would create it with the umask's mode. SQLite gives its -wal and -shm files
    the database file's mode."""
    database = make_url(database_url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        private_file(Path(database))


def warn_if_shared(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by other users (mode %o); use chmod go-rwx", path, mode)
