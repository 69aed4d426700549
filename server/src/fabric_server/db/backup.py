"""Online backup of a SQLite database: a consistent copy taken while the server runs."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path


def backup_sqlite(database: Path, target: Path) -> int:
    """Copy `database` into the new file `target` with `VACUUM INTO`; returns its size.

    The copy is one read transaction: a snapshot of the last commit before it began, taken
    without stopping writers (WAL mode lets them go on). `target` must not exist.
    """
    if target.exists():
        raise FileExistsError(f"{target} exists")
    source = sqlite3.connect(database, timeout=30)
    try:
        source.execute("PRAGMA busy_timeout=30000")
        try:
            source.execute("VACUUM INTO ?", (str(target),))
        except BaseException:
            with contextlib.suppress(OSError):
                target.unlink()
            raise
    finally:
        source.close()
    return target.stat().st_size
