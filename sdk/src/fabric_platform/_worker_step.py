"""What an operation's function sees of its task: `Step`, and `OperationError` to fail on purpose.

A function may run on the worker's event loop (``async def``) or in a thread of its own (plain
``def``); `Step.progress` and `Step.log` work from both, never block, and send in call order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any, Awaitable, Callable, Optional

from ._errors import FabricAPIError, FabricError

__all__ = ["OperationError", "Step"]

logger = logging.getLogger("fabric_platform.worker")

LOG_LEVELS = ("debug", "info", "warning", "error")
# The server's limits on a progress message and a log line.
MAX_PROGRESS_MESSAGE = 2000
MAX_LOG_MESSAGE = 10_000
# Notes waiting to be sent for one task; beyond this a chatty function's notes are dropped.
MAX_PENDING_NOTES = 1000
# Sending attempts for one note before it is dropped (a note is never worth stalling a task).
NOTE_ATTEMPTS = 3

#: ``(kind, body)`` where kind is ``"progress"`` or ``"log"``; the body lacks ``attempt``.
Note = tuple[str, dict[str, Any]]
NoteSink = Callable[[Note], None]


class OperationError(Exception):
    """Raise it from an operation to fail the task deliberately.

    ``retryable=False`` (the default) fails the node at once; ``retryable=True`` lets the
    node's retry policy try again. ``details`` (a JSON object) is kept with the failure.
    Any other exception is reported as a retryable failure ``"TypeName: message"``.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        details: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.details = dict(details) if details is not None else None


class Step:
    """One task as the operation's function sees it, passed as its second argument.

    Identity: `task_id` and `attempt` (the lease), `run_id`, `node_key`, `node_attempt`,
    `operation`, and `idempotency_key` (``run_id:node_key:node_attempt``, the same for every
    delivery of one node attempt: use it to make side effects happen once). `config` is the
    node's rendered config and `secrets` the organization secrets the node asked for.
    `cancelled` becomes true when the task is no longer wanted (its run was cancelled, it
    timed out, or the worker is stopping without waiting for it); a long sync function should
    look at it now and then and return early.

    Workers build Steps; a test of an operation can build one from a task-shaped dict.
    """

    def __init__(self, task: Mapping[str, Any], *, sink: Optional[NoteSink] = None) -> None:
        self.task_id: str = str(task.get("id", ""))
        self.attempt: int = int(task.get("attempt", 1))
        self.operation: str = str(task.get("operation", ""))
        self.run_id: Optional[str] = task.get("run_id")
        self.node_key: Optional[str] = task.get("node_key")
        self.node_attempt: Optional[int] = task.get("node_attempt")
        self.idempotency_key: Optional[str] = task.get("idempotency_key")
        config = task.get("config")
        self.config: dict[str, Any] = dict(config) if isinstance(config, Mapping) else {}
        secrets = task.get("secrets")
        self.secrets: dict[str, str] = dict(secrets) if isinstance(secrets, Mapping) else {}
        self._sink = sink
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        """True once the task is no longer wanted: stop working and return."""
        return self._cancelled.is_set()

    def _cancel(self) -> None:
        self._cancelled.set()

    def progress(self, fraction: Optional[float] = None, message: Optional[str] = None) -> None:
        """Record progress (a ``workflow.node.progress`` event of the run); never blocks.

        ``fraction`` is between 0 and 1 (values just outside are clamped), or None for a
        message alone. Sending failures are logged, not raised.
        """
        if fraction is not None:
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
                raise TypeError(f"fraction must be a number between 0 and 1, got {fraction!r}")
            if math.isnan(fraction):
                raise ValueError("fraction must be a number between 0 and 1, got NaN")
            fraction = min(1.0, max(0.0, float(fraction)))
        if message is not None:
            message = str(message)[:MAX_PROGRESS_MESSAGE]
        self._send(("progress", {"progress": fraction, "message": message}))

    def log(self, message: str, level: str = "info") -> None:
        """Record a log line (a ``workflow.node.log`` event of the run); never blocks.

        ``level`` is ``debug``, ``info``, ``warning`` or ``error``. Sending failures are
        logged, not raised.
        """
        if level not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
        text = str(message)[:MAX_LOG_MESSAGE]
        if text:
            self._send(("log", {"message": text, "level": level}))

    def _send(self, note: Note) -> None:
        if self._sink is not None:
            self._sink(note)

    def __repr__(self) -> str:
        return f"Step(task_id={self.task_id!r}, operation={self.operation!r})"


class NoteSender:
    """Sends one task's progress and log notes in order, from any thread, without blocking.

    `push` may be called from any thread: the note is handed to the event loop, queued, and
    sent by one sender coroutine at a time. A note the server refuses for good (the task is
    no longer this worker's) ends the sending; a transient failure is retried a few times.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: Callable[[Note], Awaitable[None]],
        is_transient: Callable[[FabricError], bool],
        pause: Callable[[int], Awaitable[None]],
        task_id: str,
    ) -> None:
        self._loop = loop
        self._send = send
        self._is_transient = is_transient
        self._pause = pause
        self._task_id = task_id
        self._queue: deque[Note] = deque()
        self._sender: Optional[asyncio.Task[None]] = None
        self._closed = False
        self._warned_full = False

    def push(self, note: Note) -> None:
        """Queue ``note``; safe from any thread (a note after `close` is dropped)."""
        # A closed loop (RuntimeError): the worker is gone, and the note with it.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._enqueue, note)

    def _enqueue(self, note: Note) -> None:
        if self._closed:
            return
        if len(self._queue) >= MAX_PENDING_NOTES:
            if not self._warned_full:
                self._warned_full = True
                logger.warning("task %s: too many notes waiting; dropping some", self._task_id)
            return
        self._queue.append(note)
        if self._sender is None or self._sender.done():
            self._sender = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        while self._queue and not self._closed:
            note = self._queue[0]
            if not await self._deliver(note):
                self._closed = True
                self._queue.clear()
                return
            if self._queue and self._queue[0] is note:
                self._queue.popleft()

    async def _deliver(self, note: Note) -> bool:
        """Send one note; False when no later note of this task can succeed either."""
        for attempt in range(NOTE_ATTEMPTS):
            try:
                await self._send(note)
                return True
            except FabricAPIError as exc:
                if exc.status_code in (404, 409):
                    logger.info("task %s: no longer ours, notes stop (%s)", self._task_id, exc)
                    return False
                if not self._is_transient(exc):
                    logger.warning("task %s: %s note refused: %s", self._task_id, note[0], exc)
                    return True
            except FabricError as exc:
                if not self._is_transient(exc):
                    logger.warning("task %s: %s note not sent: %s", self._task_id, note[0], exc)
                    return True
            if attempt + 1 < NOTE_ATTEMPTS:
                await self._pause(attempt)
        logger.warning(
            "task %s: %s note dropped after %d tries", self._task_id, note[0], NOTE_ATTEMPTS
        )
        return True

    async def flush(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until every note queued so far was sent."""
        # Notes pushed from the function's thread reach the loop through call_soon_threadsafe,
        # queued before the function's result: one loop turn lets them all arrive.
        await asyncio.sleep(0)
        sender = self._sender
        if sender is None or sender.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(sender), timeout)
        except asyncio.TimeoutError:
            logger.warning("task %s: notes still unsent after %.0f s", self._task_id, timeout)

    def close(self) -> None:
        """Stop sending: pending notes are dropped."""
        self._closed = True
        self._queue.clear()
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
