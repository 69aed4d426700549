"""Bounded label values: a metric label never takes more than a fixed number of values.

Labels built from data (a provider's model name, a workflow operation, a work kind) are
passed through a `LabelValues`; once it has seen `limit` distinct values, any new one is
counted as `other`, so a caller inventing model names cannot grow the scrape without bound.
Ids never become labels.
"""

from __future__ import annotations

import threading

OTHER = "other"
UNKNOWN = "unknown"


class LabelValues:
    def __init__(self, limit: int, *, max_length: int = 64) -> None:
        self.limit = limit
        self.max_length = max_length
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: object) -> str:
        if not isinstance(value, str) or not value:
            return UNKNOWN
        value = value[: self.max_length]
        if value in self._seen:
            return value
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
        return value


def attempt_label(number: int) -> str:
    """Attempt numbers 1 to 9 as themselves, later ones together as `10+`."""
    return str(number) if 1 <= number < 10 else "10+"
