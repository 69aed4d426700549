"""The code-worker protocol over the SDK's async client: one method per call a worker makes.

Requests go through `AsyncClientCore._request` (configuration, auth, envelope unwrapping and
error mapping); the worker decides itself what to retry (see `is_transient`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

from ._base import encode_path
from ._core import AsyncClientCore
from ._errors import FabricAPIError, FabricConnectionError, FabricError, FabricRateLimitError

_WORKERS = "/v1/workers"
# The server's limits on a poll: free slots per operation, seconds held.
MAX_POLL_CAPACITY = 100
MAX_POLL_WAIT = 30.0
MAX_ERROR_LENGTH = 10_000


def is_transient(error: FabricError) -> bool:
    """True for failures that may pass: connection trouble, 408, 429 and 5xx answers."""
    if isinstance(error, FabricAPIError):
        status = error.status_code
        return status in (408, 429) or status >= 500
    return isinstance(error, FabricConnectionError)


def worker_gone(error: FabricError) -> bool:
    """True when the server no longer knows this worker (deregistered, or unknown)."""
    if not isinstance(error, FabricAPIError):
        return False
    return error.code == "worker_stopped" or (error.status_code == 404)


class Backoff:
    """Waits between tries: exponential, capped, half of it random (so many workers failing
    together do not come back together); a server's ``Retry-After`` is obeyed up to the cap."""

    def __init__(
        self, base: float = 0.5, cap: float = 15.0, rng: Callable[[], float] = random.random
    ) -> None:
        self.base = base
        self.cap = cap
        self.rng = rng

    def delay(self, failures: int, error: Optional[FabricError] = None) -> float:
        if isinstance(error, FabricRateLimitError) and error.retry_after is not None:
            return min(self.cap, error.retry_after)
        ceiling = min(self.cap, self.base * 2.0 ** min(failures, 32))
        return ceiling / 2 + self.rng() * ceiling / 2


class WorkerProtocol:
    """The calls of one worker process; ``worker_id`` is set by `register`."""

    def __init__(self, client: AsyncClientCore) -> None:
        self.client = client
        self.worker_id: Optional[str] = None

    def _path(self, template: str, *ids: str) -> str:
        if self.worker_id is None:
            raise FabricError("the worker is not registered")
        return encode_path(_WORKERS + template, self.worker_id, *ids)

    async def register(
        self,
        name: str,
        operations: Sequence[Mapping[str, Any]],
        *,
        host: Optional[str],
        sdk_version: str,
        organization_id: Optional[str],
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": name,
            "operations": list(operations),
            "sdk_version": sdk_version,
            "host": host,
        }
        if organization_id is not None:
            body["organization_id"] = organization_id
        worker = await self.client._request("POST", _WORKERS, body=body)
        if not isinstance(worker, dict) or not isinstance(worker.get("id"), str):
            raise FabricError(f"unexpected answer to the worker registration: {worker!r}")
        self.worker_id = worker["id"]
        return worker

    async def deregister(self) -> None:
        await self.client._request("DELETE", self._path("/{}"))

    async def poll(self, capacity: Mapping[str, int], wait_seconds: float) -> list[dict[str, Any]]:
        body = {"capacity": dict(capacity), "wait_seconds": wait_seconds}
        tasks = await self.client._request(
            "POST", self._path("/{}/tasks/poll"), body=body, held=wait_seconds
        )
        if not isinstance(tasks, list):
            raise FabricError(f"unexpected answer to a poll: {tasks!r}")
        return [task for task in tasks if isinstance(task, dict)]

    async def heartbeat(self, held: Sequence[tuple[str, int]]) -> list[str]:
        body = {"tasks": [{"id": task_id, "attempt": attempt} for task_id, attempt in held]}
        answer = await self.client._request("POST", self._path("/{}/heartbeat"), body=body)
        cancel = answer.get("cancel") if isinstance(answer, dict) else None
        return [task_id for task_id in cancel or [] if isinstance(task_id, str)]

    async def complete(self, task_id: str, attempt: int, output: Mapping[str, Any]) -> None:
        body = {"attempt": attempt, "output": output}
        await self.client._request("POST", self._path("/{}/tasks/{}/complete", task_id), body=body)

    async def fail(
        self,
        task_id: str,
        attempt: int,
        error: str,
        *,
        retryable: bool,
        details: Optional[Mapping[str, Any]],
    ) -> None:
        body = {
            "attempt": attempt,
            "error": (error or "failed")[:MAX_ERROR_LENGTH],
            "retryable": retryable,
            "details": dict(details) if details is not None else None,
        }
        await self.client._request("POST", self._path("/{}/tasks/{}/fail", task_id), body=body)

    async def note(self, task_id: str, attempt: int, kind: str, body: Mapping[str, Any]) -> None:
        """A progress or log note (``kind``) about a task."""
        path = self._path("/{}/tasks/{}/" + kind, task_id)
        await self.client._request("POST", path, body={"attempt": attempt, **body})
