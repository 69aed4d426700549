"""The code worker the workers benchmark runs (`fabric-worker _bench_worker:worker`)."""

from __future__ import annotations

from typing import Any

from fabric_platform import Worker

worker = Worker()  # base URL from FABRIC_BASE_URL; a dev-mode server needs no key


@worker.operation("bench.noop", concurrency=32)
async def noop(inputs: dict[str, Any], step: Any) -> dict[str, Any]:
    return dict(inputs)
