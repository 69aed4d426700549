"""What /proc (Linux) says about the processes a benchmark started: their CPU time, so a
benchmark can say what one job cost the server side in CPU and not only in wall-clock time, and
the Fabric server `_harness.server` started, with the database it was given."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after its closing ")" do not.
    return text[text.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    """The direct children of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def tree(roots: Iterable[int]) -> list[int]:
    """`roots` and all their descendants still running."""
    pending, seen = list(roots), []
    while pending:
        pid = pending.pop()
        seen.append(pid)
        pending.extend(children(pid))
    return seen


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU seconds of `pids` (and of their children already waited for)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:  # utime, stime, cutime, cstime are fields 14-17 of /proc/PID/stat
            total += sum(int(value) for value in fields[11:15])
    return total / TICKS


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def environment(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").split("=", 1) for item in raw.split(b"\0") if item)
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def fabric_server() -> tuple[int, str]:
    """The pid of the `fabric-server serve` process this process started (`_harness.server`),
    and its database URL."""
    for pid in children(os.getpid()):
        if "fabric_server" in command_line(pid):
            return pid, environment(pid)["FABRIC_DATABASE_URL"]
    raise RuntimeError("the Fabric server process was not found")
