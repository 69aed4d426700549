"""`AsyncWorker`: runs the user's functions as workflow steps (code workers).

One worker process registers the operations it serves, takes tasks by long poll (one poll at a
time, asking for the free slots of each operation), runs each task's function, and reports its
outcome. A heartbeat keeps it online and its tasks leased, and carries cancellations back.
Network trouble never ends the worker: every call is tried again after a backoff.
`Worker` (in `_worker_sync`) is the blocking face, with signal handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import threading
from types import TracebackType
from typing import Any, Callable, Optional, TypeVar

from ._base import DEFAULT_TIMEOUT
from ._client import AsyncFabricClient
from ._errors import FabricAPIError, FabricError
from ._version import __version__
from ._worker_exec import (
    OperationFunction,
    OperationSpec,
    Outcome,
    is_async_function,
    outcome_of,
    start_function,
    timed_out,
)
from ._worker_protocol import (
    MAX_POLL_CAPACITY,
    MAX_POLL_WAIT,
    Backoff,
    WorkerProtocol,
    is_transient,
    worker_gone,
)
from ._worker_step import NoteSender, Step

__all__ = ["AsyncWorker"]

logger = logging.getLogger("fabric_platform.worker")

_F = TypeVar("_F", bound=Callable[..., Any])
_OPERATION_NAME = re.compile(r"^[a-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$")
_RESERVED = ("ai", "http", "text", "workflow", "worker", "context", "fabric")
DEFAULT_HEARTBEAT = 10.0
# Longest wait for a task's notes to be sent before its outcome is reported.
NOTE_FLUSH_SECONDS = 10.0
# Tries (each bounded) to deregister when stopping; a forced stop makes one short try.
DEREGISTER_TRIES = 3
DEREGISTER_TIMEOUT = 5.0
FORCED_DEREGISTER_TIMEOUT = 2.0


def _time_limit(own: Optional[float], task: Any) -> Optional[float]:
    limits = [own] if own is not None else []
    if isinstance(task, (int, float)) and not isinstance(task, bool) and task > 0:
        limits.append(float(task))
    return min(limits) if limits else None


class _Running:
    """A task this worker holds: from the poll that leased it until its outcome is reported
    (or the server cancels it)."""

    def __init__(
        self, task: dict[str, Any], spec: Optional[OperationSpec], notes: NoteSender
    ) -> None:
        self.task = task
        self.task_id: str = task["id"]
        self.attempt: int = task["attempt"]
        self.spec = spec
        self.notes = notes
        self.step = Step(task, sink=notes.push)
        self.stopped = asyncio.Event()
        self.function: Optional[asyncio.Future[Any]] = None
        self.handler: Optional[asyncio.Task[None]] = None
        # Whether this task counts against its operation's concurrency (see `_hold_slot`).
        self.holds_slot = False

    def stop(self) -> None:
        """No longer wanted: the function is told (sync) or cancelled (async); no report."""
        self.stopped.set()
        self.step._cancel()
        if self.spec is not None and self.spec.is_async and self.function is not None:
            self.function.cancel()


class AsyncWorker:
    """A code worker for asyncio applications.

    ``AsyncWorker(base_url=None, api_key=None, organization_id=None, *, name=None,
    principal_id=None, timeout=30.0, poll_wait_seconds=20.0, shutdown_grace=30.0,
    client=None, transport=None)``

    Connection settings resolve like `AsyncFabricClient`'s (argument, then ``FABRIC_BASE_URL``,
    ``FABRIC_API_KEY``, ``FABRIC_ORGANIZATION_ID``, then defaults); the API key needs the
    ``worker.execute`` scope. ``name`` defaults to ``host:pid``. ``client`` lends an
    `AsyncFabricClient` (left open); ``transport`` replaces the HTTP layer.

    Add operations with `operation` (a decorator) or `add_operation`, then either
    ``await worker.run()`` (returns once `stop` was called and the worker drained), or
    ``async with worker:`` (registers on entry, runs in the background, stops and drains on
    exit).
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        organization_id: Optional[str] = None,
        *,
        name: Optional[str] = None,
        principal_id: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        poll_wait_seconds: float = 20.0,
        shutdown_grace: float = 30.0,
        client: Optional[AsyncFabricClient] = None,
        transport: Optional[Any] = None,
    ) -> None:
        if not 0 <= poll_wait_seconds <= MAX_POLL_WAIT:
            raise ValueError(f"poll_wait_seconds must be between 0 and {MAX_POLL_WAIT:g}")
        if not shutdown_grace >= 0:
            raise ValueError("shutdown_grace must be a non-negative number of seconds")
        self._owns_client = client is None
        if client is None:
            client = AsyncFabricClient(
                base_url,
                api_key,
                principal_id,
                organization_id,
                timeout,
                max_retries=0,  # the worker retries each call itself, for as long as it runs
                transport=transport,
            )
        elif transport is not None:
            raise ValueError("pass either client or transport, not both")
        self._client = client
        self._protocol = WorkerProtocol(client)
        self.name: str = name or f"{socket.gethostname()}:{os.getpid()}"
        self.poll_wait_seconds = float(poll_wait_seconds)
        self.shutdown_grace = float(shutdown_grace)
        self._operations: dict[str, OperationSpec] = {}
        self._busy: dict[str, int] = {}
        self._running: dict[str, _Running] = {}
        self._backoff = Backoff()
        self._heartbeat_interval = DEFAULT_HEARTBEAT
        self._started = False
        self._stop_early = False
        self._gone = False
        self._grace = self.shutdown_grace
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[int] = None
        self._runner: Optional[asyncio.Task[None]] = None

    # -- what the user declares ---------------------------------------------------------------

    def operation(
        self, name: str, *, concurrency: int = 1, timeout: Optional[float] = None
    ) -> Callable[[_F], _F]:
        """Decorator: serve operation ``name`` with the decorated function.

        The function is called as ``function(inputs, step)`` and returns a dict (the node's
        output; None means ``{}``). ``async def`` functions run on the worker's loop, plain
        ones in a thread each. ``concurrency`` is how many tasks of this operation run at
        once; ``timeout`` (seconds) bounds one call, together with the node's own limit (the
        smaller applies).
        """

        def decorate(function: _F) -> _F:
            self.add_operation(name, function, concurrency=concurrency, timeout=timeout)
            return function

        return decorate

    def add_operation(
        self,
        name: str,
        function: OperationFunction,
        *,
        concurrency: int = 1,
        timeout: Optional[float] = None,
    ) -> None:
        """Serve operation ``name`` with ``function`` (see `operation`)."""
        if self._started:
            raise RuntimeError("operations are added before the worker runs")
        if not isinstance(name, str) or not _OPERATION_NAME.match(name):
            raise ValueError(
                f"{name!r} is not an operation name: a dotted name of letters, digits, `_` and "
                "`-` starting with a lowercase letter, like `acme.resize_image`"
            )
        if name.split(".", 1)[0] in _RESERVED:
            raise ValueError(f"`{name.split('.', 1)[0]}.` is reserved for built-in operations")
        if name in self._operations:
            raise ValueError(f"operation {name} is already served by this worker")
        if not callable(function):
            raise TypeError(f"the function of {name} is not callable")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._operations[name] = OperationSpec(
            name=name,
            function=function,
            concurrency=concurrency,
            timeout=float(timeout) if timeout is not None else None,
            is_async=is_async_function(function),
        )
        self._busy[name] = 0

    @property
    def operations(self) -> list[str]:
        """The names of the operations served, in the order they were added."""
        return list(self._operations)

    @property
    def worker_id(self) -> Optional[str]:
        """The id the server gave this worker, once registered."""
        return self._protocol.worker_id

    # -- running and stopping -----------------------------------------------------------------

    async def run(self) -> None:
        """Register, then take and run tasks until `stop` is called; drain, deregister, return.

        Raises a `FabricError` when the server refuses the registration for good (a bad key,
        a missing scope, an invalid operation); transient failures are retried.
        """
        self._prepare()
        await self._run()

    async def _run(self) -> None:
        try:
            if self._stop_early:
                return
            if not await self._register():
                return
            heartbeat = asyncio.ensure_future(self._heartbeat_loop())
            poller = asyncio.ensure_future(self._poll_loop())
            stopping = asyncio.ensure_future(self._stopping.wait())
            try:
                await asyncio.wait({poller, stopping}, return_when=asyncio.FIRST_COMPLETED)
                await _finish(poller)  # raises why the poller ended, if it failed
                await self._drain()
            finally:
                stopping.cancel()
                poller.cancel()
                await _finish(heartbeat)
            await self._deregister()
        finally:
            await self._abandon_all()
            if self._owns_client:
                await self._client.close()

    def stop(self, grace: Optional[float] = None) -> None:
        """Stop taking tasks; running ones get ``grace`` seconds (default ``shutdown_grace``)
        to finish, then are abandoned; then the worker deregisters and `run` returns.

        A second call, or ``grace=0``, abandons the running tasks at once. Safe to call from
        any thread and from signal handlers run by the loop.
        """
        if self._loop is None:
            self._stop_early = True
            return
        if threading.get_ident() == self._loop_thread:
            self._request_stop(grace)
        else:
            # A closed loop (RuntimeError) means nothing runs anymore.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._request_stop, grace)

    async def __aenter__(self) -> AsyncWorker:
        """Start the worker in the background; return once it is registered."""
        self._prepare()
        self._runner = asyncio.ensure_future(self._run())
        registered = asyncio.ensure_future(self._registered.wait())
        try:
            await asyncio.wait({self._runner, registered}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            registered.cancel()
        if self._runner.done():
            self._runner.result()  # the registration failed: raise why
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if not self._stopping.is_set():
            self.stop()
        if self._runner is not None:
            await self._runner

    def _prepare(self) -> None:
        if self._started:
            raise RuntimeError("a worker runs once; build a new one to run again")
        if not self._operations:
            raise ValueError("the worker serves no operations: add some with @worker.operation")
        self._started = True
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        # Made here, on the running loop (Python 3.9 binds an Event to a loop when built).
        self._stopping = asyncio.Event()
        self._forced = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._registered = asyncio.Event()
        if self._stop_early:
            self._stopping.set()

    def _request_stop(self, grace: Optional[float]) -> None:
        if self._stopping.is_set() or grace == 0:
            if not self._forced.is_set():
                logger.warning("stopping now: running tasks are abandoned")
            self._forced.set()
        elif grace is not None:
            self._grace = max(0.0, float(grace))
        self._stopping.set()

    async def _pause(self, seconds: float, until: asyncio.Event) -> None:
        """Sleep ``seconds``, or less when ``until`` is set meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(until.wait(), seconds)

    # -- registration -------------------------------------------------------------------------

    async def _register(self) -> bool:
        """Register (again); False when stopped before the server could be reached."""
        operations = [
            {"name": spec.name, "concurrency": spec.concurrency}
            for spec in self._operations.values()
        ]
        failures = 0
        while not self._stopping.is_set():
            try:
                worker = await self._protocol.register(
                    self.name,
                    operations,
                    host=socket.gethostname(),
                    sdk_version=__version__,
                    organization_id=self._client.organization_id,
                )
            except FabricError as exc:
                if not is_transient(exc):
                    raise
                logger.warning("cannot register yet (%s); trying again", exc)
                await self._pause(self._backoff.delay(failures, exc), self._stopping)
                failures += 1
                continue
            interval = worker.get("heartbeat_interval_seconds")
            if isinstance(interval, (int, float)) and interval > 0:
                self._heartbeat_interval = float(interval)
            self._gone = False
            self._registered.set()
            logger.info(
                "worker %s (%s) registered: %s", worker["id"], self.name, ", ".join(self.operations)
            )
            return True
        return False

    async def _register_again(self) -> None:
        logger.warning(
            "the server no longer knows worker %s: its tasks went back to the queue; "
            "registering again",
            self._protocol.worker_id,
        )
        for running in list(self._running.values()):
            running.stop()
            if running.handler is not None:
                running.handler.cancel()
        await self._register()

    async def _deregister(self) -> None:
        forced = self._forced.is_set()
        tries = 1 if forced else DEREGISTER_TRIES
        timeout = FORCED_DEREGISTER_TIMEOUT if forced else DEREGISTER_TIMEOUT
        error: Optional[BaseException] = None
        for failures in range(tries):
            try:
                await asyncio.wait_for(self._protocol.deregister(), timeout)
                logger.info("worker %s deregistered", self._protocol.worker_id)
                return
            except (FabricError, asyncio.TimeoutError) as exc:
                error = exc
                if isinstance(exc, FabricError) and not is_transient(exc):
                    break
                if failures + 1 < tries:
                    await asyncio.sleep(self._backoff.delay(failures))
        logger.warning(
            "could not deregister worker %s (%s): its unfinished tasks return to the queue "
            "when their leases expire",
            self._protocol.worker_id,
            error or "timed out",
        )

    # -- taking tasks -------------------------------------------------------------------------

    def _capacity(self) -> dict[str, int]:
        return {
            name: max(0, min(MAX_POLL_CAPACITY, spec.concurrency - self._busy[name]))
            for name, spec in self._operations.items()
        }

    async def _poll_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            if self._gone:
                await self._register_again()
                continue
            self._slot_freed.clear()
            capacity = self._capacity()
            if not any(capacity.values()):
                await self._slot_freed.wait()
                continue
            try:
                tasks = await self._protocol.poll(capacity, self.poll_wait_seconds)
            except FabricError as exc:
                if worker_gone(exc):
                    self._gone = True
                    continue
                log = logger.warning if is_transient(exc) else logger.error
                log("poll failed (%s); polling again", exc)
                await self._pause(self._backoff.delay(failures, exc), self._stopping)
                failures += 1
                continue
            failures = 0
            for task in tasks:
                self._accept(task)

    def _accept(self, task: dict[str, Any]) -> None:
        if not isinstance(task.get("id"), str) or not isinstance(task.get("attempt"), int):
            logger.error("ignoring a malformed task: %r", task)
            return
        assert self._loop is not None
        protocol = self._protocol
        task_id, attempt = task["id"], task["attempt"]
        if task_id in self._running:  # already running here: one run per lease
            return

        async def send(note: tuple[str, dict[str, Any]]) -> None:
            await protocol.note(task_id, attempt, note[0], note[1])

        async def pause(failures: int) -> None:
            await asyncio.sleep(self._backoff.delay(failures))

        notes = NoteSender(self._loop, send, is_transient, pause, task_id)
        running = _Running(task, self._operations.get(task.get("operation", "")), notes)
        self._running[task_id] = running
        # The slot is taken now, before the next poll asks for the free ones.
        if running.spec is not None:
            running.holds_slot = True
            self._busy[running.spec.name] += 1
        running.handler = asyncio.ensure_future(self._handle(running))

    # -- one task -----------------------------------------------------------------------------

    async def _handle(self, running: _Running) -> None:
        try:
            if running.spec is None:
                outcome: Optional[Outcome] = Outcome(
                    error=f"this worker does not serve {running.task.get('operation')!r}",
                    retryable=True,
                )
            else:
                outcome = await self._execute(running, running.spec)
            if outcome is None or running.stopped.is_set():
                return
            await running.notes.flush(NOTE_FLUSH_SECONDS)
            await self._report(running, outcome)
        except Exception:
            logger.exception("task %s: unexpected trouble in the worker", running.task_id)
        finally:
            running.notes.close()
            if running.function is None:  # the function never started
                self._release_slot(running)
            if self._running.get(running.task_id) is running:
                del self._running[running.task_id]

    async def _execute(self, running: _Running, spec: OperationSpec) -> Optional[Outcome]:
        """Run the function until it ends, times out, or the task is stopped (None)."""
        inputs = running.task.get("inputs")
        inputs = dict(inputs) if isinstance(inputs, dict) else {}
        limit = _time_limit(spec.timeout, running.task.get("timeout_seconds"))
        function = start_function(spec, inputs, running.step)
        running.function = function
        # The slot stays taken until the function really ends, even when it was abandoned.
        function.add_done_callback(lambda done: self._function_ended(running, done))
        stopped = asyncio.ensure_future(running.stopped.wait())
        try:
            await asyncio.wait(
                {function, stopped}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopped.cancel()
        if running.stopped.is_set():
            return None
        if function.done():
            if function.cancelled():
                return Outcome(error="the operation was cancelled", retryable=True)
            return outcome_of(function)
        assert limit is not None
        running.step._cancel()
        if spec.is_async:
            function.cancel()
        logger.warning("task %s (%s): timed out after %g s", running.task_id, spec.name, limit)
        return timed_out(limit)

    def _function_ended(self, running: _Running, function: asyncio.Future[Any]) -> None:
        if not function.cancelled():
            function.exception()  # retrieved here, so an abandoned one is not "never retrieved"
        self._release_slot(running)

    def _release_slot(self, running: _Running) -> None:
        if running.holds_slot and running.spec is not None:
            running.holds_slot = False
            self._busy[running.spec.name] -= 1
            self._slot_freed.set()

    async def _report(self, running: _Running, outcome: Outcome) -> None:
        """Report until the server has the outcome, refuses it for good, or the task stops."""
        protocol = self._protocol
        failures = 0
        while not running.stopped.is_set() and not self._forced.is_set():
            try:
                if outcome.completed:
                    assert outcome.output is not None
                    await protocol.complete(running.task_id, running.attempt, outcome.output)
                    logger.info("task %s (%s): completed", running.task_id, running.step.operation)
                else:
                    assert outcome.error is not None
                    await protocol.fail(
                        running.task_id,
                        running.attempt,
                        outcome.error,
                        retryable=outcome.retryable,
                        details=outcome.details,
                    )
                    logger.info(
                        "task %s (%s): failed: %s",
                        running.task_id,
                        running.step.operation,
                        outcome.error,
                    )
                return
            except FabricAPIError as exc:
                if exc.status_code in (404, 409):
                    logger.warning(
                        "task %s: outcome dropped, the task is no longer this worker's (%s)",
                        running.task_id,
                        exc,
                    )
                    return
                if exc.status_code == 422 and outcome.completed:
                    # Too large (or otherwise refused) output: the task is still ours to fail.
                    details = {"code": exc.code} if exc.code else None
                    outcome = Outcome(error=exc.message, retryable=False, details=details)
                    continue
                if not is_transient(exc):
                    logger.error("task %s: outcome refused: %s", running.task_id, exc)
                    return
                error: FabricError = exc
            except FabricError as exc:
                if not is_transient(exc):
                    logger.error("task %s: outcome not sent: %s", running.task_id, exc)
                    return
                error = exc
            logger.warning("task %s: reporting failed (%s); trying again", running.task_id, error)
            await self._pause(self._backoff.delay(failures, error), self._forced)
            failures += 1

    # -- heartbeat, drain ---------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        failures = 0
        while True:
            held = [
                (r.task_id, r.attempt) for r in self._running.values() if not r.stopped.is_set()
            ]
            try:
                cancel = await self._protocol.heartbeat(held)
            except FabricError as exc:
                if worker_gone(exc):
                    self._gone = True
                    self._slot_freed.set()  # wake the poller: it registers again
                logger.warning("heartbeat failed (%s)", exc)
                delay = min(self._heartbeat_interval, self._backoff.delay(failures, exc))
                failures += 1
            else:
                failures = 0
                delay = self._heartbeat_interval
                for task_id in cancel:
                    running = self._running.get(task_id)
                    if running is not None:
                        logger.info("task %s: cancelled by the server", task_id)
                        running.stop()
            await asyncio.sleep(delay)

    async def _drain(self) -> None:
        handlers = {r.handler for r in self._running.values() if r.handler is not None}
        if not handlers or self._forced.is_set():
            return
        logger.info("stopping: %d running task(s) have %g s to finish", len(handlers), self._grace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._grace
        forced = asyncio.ensure_future(self._forced.wait())
        try:
            pending: set[Any] = set(handlers)
            while pending and not self._forced.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    logger.warning("stopping: %d task(s) did not finish in time", len(pending))
                    break
                _, pending = await asyncio.wait(
                    pending | {forced}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(forced)
        finally:
            forced.cancel()

    async def _abandon_all(self) -> None:
        """Stop every task still held, without reporting: deregistering hands them back."""
        handlers = []
        for running in list(self._running.values()):
            running.stop()
            running.notes.close()
            if running.handler is not None:
                running.handler.cancel()
                handlers.append(running.handler)
        self._running.clear()
        # Cancelled handlers end at once (an abandoned function is not waited for).
        await asyncio.gather(*handlers, return_exceptions=True)


async def _finish(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for it; its own failure is raised, its cancellation is not."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        # Our own cancellation (of the caller) must still propagate.
        current = asyncio.current_task()
        if current is not None and _cancelling(current):
            raise


def _cancelling(task: asyncio.Task[Any]) -> bool:
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    return bool(cancelling()) if cancelling is not None else False
