"""A small in-process sliding-window rate limiter for the auth endpoints.

State lives in the process: with N API replicas an address gets up to N times the limit.
That is enough to blunt password guessing and mail flooding from one address; the account
lockout (stored in the database) is the guard that holds across replicas.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable


class SlidingWindowLimiter:
    """At most `limit` hits per key within any `window` seconds (a sliding log).

    Memory is bounded: at most `max_keys` keys are tracked, the least recently used
    forgotten first. A `limit` of 0 turns limiting off. Not thread-safe; it is used from
    one event loop, and `hit` never awaits.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._hits: OrderedDict[Hashable, deque[float]] = OrderedDict()

    def hit(self, key: Hashable) -> int | None:
        """Count one request for `key`. None when allowed, else whole seconds to wait."""
        if self.limit <= 0:
            return None
        now = self.clock()
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.window - now))
        hits.append(now)
        return None

    def reset(self) -> None:
        self._hits.clear()
