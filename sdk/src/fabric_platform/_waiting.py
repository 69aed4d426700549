"""Waiting for a job or a run to end: one long wait at a time where the server offers it
(``GET …?wait=``, answered as soon as it ends), plain polling where it does not.

`Waiter` holds the decisions (no I/O), so the sync and async clients share them.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any, Optional

from ._errors import FabricWaitTimeout

# The longest wait asked of the server in one request (it holds at most 120 s).
LONG_WAIT_SECONDS = 50.0


def check_wait(poll_interval: float, timeout: Optional[float]) -> None:
    if not poll_interval > 0:
        raise ValueError(f"poll_interval must be a positive number, got {poll_interval!r}")
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"timeout must be None or a non-negative number, got {timeout!r}")


class Waiter:
    """Decides how long to ask the server to hold each read, and what to do after it.

    A server without long waits answers at once; when an answer comes back unfinished well
    before the time asked for, the waiter falls back to polling every ``poll_interval``.
    """

    def __init__(
        self,
        kind: str,
        ident: str,
        terminal: Collection[str],
        *,
        timeout: Optional[float],
        poll_interval: float,
        now: float,
    ) -> None:
        check_wait(poll_interval, timeout)
        self.kind = kind
        self.ident = ident
        self.terminal = terminal
        self.poll_interval = poll_interval
        self.deadline = math.inf if timeout is None else now + timeout
        self.long_waits = True

    def hold(self, now: float) -> float:
        """Seconds to ask the server to hold the next read (0: a plain read)."""
        if not self.long_waits:
            return 0.0
        return max(0.0, min(LONG_WAIT_SECONDS, self.deadline - now))

    def after(self, found: Any, asked_at: float, held: float, now: float) -> Optional[float]:
        """None when ``found`` has ended; else the pause before the next read. Raises
        `FabricWaitTimeout` once the time is up."""
        status = found.get("status") if isinstance(found, dict) else None
        if status in self.terminal:
            return None
        if now >= self.deadline:
            ids = {"job_id": self.ident} if self.kind == "job" else {"run_id": self.ident}
            raise FabricWaitTimeout(
                f"{self.kind} {self.ident} did not finish in time (last status: {status})",
                last_status=status if isinstance(status, str) else None,
                **ids,
            )
        if held > 0 and now - asked_at < held / 2:
            self.long_waits = False  # answered early, unfinished: this server does not hold
        if self.long_waits:
            return 0.0
        return min(self.poll_interval, self.deadline - now)
