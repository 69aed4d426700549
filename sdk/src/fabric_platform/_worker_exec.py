"""Running one operation's function, and turning what it did into the task's outcome.

Async functions run as tasks on the worker's loop; sync functions each run in a daemon thread
(the operation's ``concurrency`` bounds how many at once). Daemon threads, not an executor:
a function abandoned after its time limit, or at a forced stop, must never keep the process
from exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ._worker_step import OperationError, Step

# The traceback lines kept with a failure, and their total size.
TRACEBACK_LINES = 12
TRACEBACK_CHARS = 4000

OperationFunction = Callable[[dict[str, Any], Step], Any]


@dataclass(frozen=True)
class OperationSpec:
    """An operation the worker serves: its function, how many at once, its own time limit."""

    name: str
    function: OperationFunction
    concurrency: int
    timeout: Optional[float]
    is_async: bool


@dataclass(frozen=True)
class Outcome:
    """What to report: an ``output`` (completed), or an ``error`` (failed)."""

    output: Optional[dict[str, Any]] = None
    error: Optional[str] = None
    retryable: bool = True
    details: Optional[dict[str, Any]] = None

    @property
    def completed(self) -> bool:
        return self.error is None


def is_async_function(function: Callable[..., Any]) -> bool:
    target = getattr(function, "__call__", None)  # noqa: B004 - callable objects' async __call__
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(target)


def start_function(spec: OperationSpec, inputs: dict[str, Any], step: Step) -> asyncio.Future[Any]:
    """Start the function; the future settles with its result (or exception).

    Cancelling the future of an async function cancels its coroutine; a sync function's
    thread cannot be stopped (it sees `Step.cancelled`), and its future settles when it ends.
    """
    loop = asyncio.get_running_loop()
    if spec.is_async:
        return loop.create_task(_call_async(spec.function, inputs, step))
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: Optional[BaseException]) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        result: Any = None
        error: Optional[BaseException] = None
        try:
            result = context.run(spec.function, inputs, step)
        except Exception as exc:
            error = exc
        except BaseException as exc:  # SystemExit and the like end the task, not the worker
            error = RuntimeError(f"{type(exc).__name__}: {exc}")
        # A closed loop (RuntimeError): the worker stopped without waiting for this function.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    thread = threading.Thread(
        target=target, name=f"fabric-worker {spec.name} {step.task_id}", daemon=True
    )
    thread.start()
    return future


async def _call_async(function: OperationFunction, inputs: dict[str, Any], step: Step) -> Any:
    return await function(inputs, step)


def outcome_of(future: asyncio.Future[Any]) -> Outcome:
    """The outcome of a function that ended (its future is done and was not cancelled)."""
    error = future.exception()
    if error is None:
        return outcome_of_result(future.result())
    return outcome_of_error(error)


def outcome_of_result(result: Any) -> Outcome:
    if inspect.iscoroutine(result):
        result.close()
        return Outcome(
            error="the operation returned a coroutine: declare it with async def so that the "
            "worker awaits it",
            retryable=False,
        )
    if result is None:
        result = {}
    if not isinstance(result, dict):
        return Outcome(
            error=f"the operation returned {type(result).__name__}, not a dict: an operation "
            "returns a JSON object (or None for {})",
            retryable=False,
        )
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return Outcome(
            error=f"the operation's output is not JSON: {exc}",
            retryable=False,
        )
    return Outcome(output=result)


def outcome_of_error(error: BaseException) -> Outcome:
    if isinstance(error, OperationError):
        return Outcome(
            error=error.message or "operation failed",
            retryable=error.retryable,
            details=_json_or_repr(error.details),
        )
    text = str(error)
    message = f"{type(error).__name__}: {text}" if text else type(error).__name__
    lines = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    tail = "\n".join(lines.rstrip("\n").splitlines()[-TRACEBACK_LINES:])[-TRACEBACK_CHARS:]
    return Outcome(
        error=message,
        retryable=True,
        details={"type": type(error).__name__, "traceback": tail},
    )


def _json_or_repr(details: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """``details`` when it can be sent as JSON, else its repr (a failure must still go out)."""
    if details is None:
        return None
    try:
        json.dumps(details, allow_nan=False)
    except (TypeError, ValueError):
        return {"repr": repr(details)[:TRACEBACK_CHARS]}
    return details


def timed_out(seconds: float) -> Outcome:
    return Outcome(error=f"timed out after {seconds:g} s", retryable=True)
