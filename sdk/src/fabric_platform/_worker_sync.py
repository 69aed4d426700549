"""`Worker`: the blocking face of `AsyncWorker`, run in its own event loop with signal handling.

The first SIGTERM or SIGINT stops taking tasks and lets the running ones finish (up to the
grace period), then deregisters; a second one abandons the running tasks at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import threading
from typing import Any, Callable, Optional, TypeVar

from ._base import DEFAULT_TIMEOUT
from ._client import AsyncFabricClient
from ._worker import AsyncWorker
from ._worker_exec import OperationFunction

__all__ = ["Worker", "run_until_signalled"]

logger = logging.getLogger("fabric_platform.worker")

_F = TypeVar("_F", bound=Callable[..., Any])
STOP_SIGNALS = tuple(
    sig for sig in (getattr(signal, "SIGTERM", None), signal.SIGINT) if sig is not None
)


class Worker:
    """A code worker: serves operations with your functions until stopped.

    ``Worker(base_url=None, api_key=None, organization_id=None, *, name=None,
    principal_id=None, timeout=30.0, poll_wait_seconds=20.0, shutdown_grace=30.0,
    client=None, transport=None)`` — the settings of `AsyncWorker`, which does the work.

    ::

        worker = Worker()

        @worker.operation("acme.resize_image", concurrency=4, timeout=120)
        def resize(inputs: dict, step: Step) -> dict:
            step.progress(0.5, "halfway")
            return {"url": make_thumbnail(inputs["url"])}

        worker.run()  # blocks; SIGTERM/SIGINT drains the running tasks, then returns

    `run` runs its own event loop: call it from synchronous code (the ``fabric-worker``
    command does). In an asyncio application use `AsyncWorker`.
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
        self.async_worker = AsyncWorker(
            base_url,
            api_key,
            organization_id,
            name=name,
            principal_id=principal_id,
            timeout=timeout,
            poll_wait_seconds=poll_wait_seconds,
            shutdown_grace=shutdown_grace,
            client=client,
            transport=transport,
        )

    @property
    def name(self) -> str:
        """The name the worker registers under (``host:pid`` unless given)."""
        return self.async_worker.name

    @name.setter
    def name(self, value: str) -> None:
        self.async_worker.name = value

    @property
    def operations(self) -> list[str]:
        return self.async_worker.operations

    @property
    def worker_id(self) -> Optional[str]:
        return self.async_worker.worker_id

    def operation(
        self, name: str, *, concurrency: int = 1, timeout: Optional[float] = None
    ) -> Callable[[_F], _F]:
        """Decorator: serve operation ``name`` with the function (see `AsyncWorker.operation`)."""
        return self.async_worker.operation(name, concurrency=concurrency, timeout=timeout)

    def add_operation(
        self,
        name: str,
        function: OperationFunction,
        *,
        concurrency: int = 1,
        timeout: Optional[float] = None,
    ) -> None:
        """Serve operation ``name`` with ``function`` (see `AsyncWorker.operation`)."""
        self.async_worker.add_operation(name, function, concurrency=concurrency, timeout=timeout)

    def run(self) -> None:
        """Run until stopped by a signal or by `stop` (from another thread); blocks.

        Signal handlers are installed only when called from the main thread.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop runs here: the normal case
            run_until_signalled(self.async_worker)
            return
        raise RuntimeError(
            "Worker.run() blocks and runs its own event loop; inside an asyncio application "
            "use AsyncWorker (await worker.run(), or async with worker)"
        )

    def stop(self, grace: Optional[float] = None) -> None:
        """Ask a running worker to stop (from another thread); see `AsyncWorker.stop`."""
        self.async_worker.stop(grace)


def run_until_signalled(worker: AsyncWorker) -> None:
    """Run ``worker`` in a new event loop; SIGTERM/SIGINT stop it (twice: at once)."""
    asyncio.run(_run_with_signals(worker))


async def _run_with_signals(worker: AsyncWorker) -> None:
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        name = signal.Signals(signum).name
        if len(received) == 1:
            logger.warning(
                "%s: stopping; running tasks have %g s to finish (again to stop at once)",
                name,
                worker.shutdown_grace,
            )
            worker.stop()
        else:
            logger.warning("%s: stopping at once", name)
            worker.stop(grace=0)

    restore = _install(loop, on_signal) if _in_main_thread() else []
    try:
        await worker.run()
    finally:
        for undo in restore:
            undo()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _install(
    loop: asyncio.AbstractEventLoop, handler: Callable[[int], None]
) -> list[Callable[[], object]]:
    """Route the stop signals to ``handler`` on ``loop``; the undo actions."""
    undo: list[Callable[[], object]] = []
    for sig in STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, handler, int(sig))
            undo.append(functools.partial(loop.remove_signal_handler, sig))
        except (NotImplementedError, RuntimeError):  # Windows: no loop signal handlers
            previous = signal.getsignal(sig)

            def forward(signum: int, frame: Any) -> None:
                loop.call_soon_threadsafe(handler, signum)

            signal.signal(sig, forward)
            undo.append(functools.partial(signal.signal, sig, previous))
    return undo
