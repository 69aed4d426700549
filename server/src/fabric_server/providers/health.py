"""Provider health: a circuit breaker fed by real calls, and cached active checks.

Health is kept per provider endpoint (an organization's own OpenAI-compatible server failing
says nothing about api.openai.com) and per process: each API replica and worker learns on
its own, which is enough to stop hammering an endpoint that is down.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fabric_server.providers.errors import ProviderError

Clock = Callable[[], float]


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None


class CircuitBreaker:
    """Opens after `threshold` consecutive transient failures; while open the endpoint is
    skipped. After `cooldown` seconds calls are let through again (half-open): one success
    closes the circuit, one more failure opens it for another cooldown."""

    def __init__(self, threshold: int = 3, cooldown: float = 30.0, clock: Clock = time.monotonic):
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self._circuits: dict[str, _Circuit] = {}

    def allows(self, key: str) -> bool:
        return self.retry_in(key) == 0.0

    def retry_in(self, key: str) -> float:
        """Seconds until calls to `key` are allowed again (0 when they are now)."""
        circuit = self._circuits.get(key)
        if circuit is None or circuit.opened_at is None:
            return 0.0
        return max(0.0, circuit.opened_at + self.cooldown - self.clock())

    def record_success(self, key: str) -> None:
        self._circuits.pop(key, None)

    def record_failure(self, key: str) -> None:
        circuit = self._circuits.setdefault(key, _Circuit())
        circuit.failures += 1
        if circuit.failures >= self.threshold:
            circuit.opened_at = self.clock()


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    checked_at: float
    detail: str | None = None


class HealthChecks:
    """Runs an adapter's cheap check at most once per `ttl` seconds per endpoint."""

    def __init__(self, breaker: CircuitBreaker, ttl: float = 60.0, clock: Clock = time.monotonic):
        self.breaker = breaker
        self.ttl = ttl
        self.clock = clock
        self._reports: dict[str, HealthReport] = {}

    def cached(self, key: str) -> HealthReport | None:
        report = self._reports.get(key)
        if report is None or self.clock() - report.checked_at > self.ttl:
            return None
        return report

    async def check(self, key: str, probe: Callable[[], Awaitable[None]]) -> HealthReport:
        report = self.cached(key)
        if report is not None:
            return report
        try:
            await probe()
        except ProviderError as exc:
            if exc.transient:
                self.breaker.record_failure(key)
            report = HealthReport(False, self.clock(), f"{exc.code}: {exc.message}")
        else:
            self.breaker.record_success(key)
            report = HealthReport(True, self.clock())
        self._reports[key] = report
        return report
