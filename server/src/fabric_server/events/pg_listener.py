"""PostgreSQL LISTEN/NOTIFY: wakes this process when another process commits events or work.

Notifications only wake readers; the event log and the queue table stay the truth. A
notification carries the sending process's token, and this process's own are ignored (it
already knows what it wrote). When the listening connection drops, it reconnects and wakes
everyone once, since notifications sent meanwhile are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger("fabric_server.events")


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PgListener:
    def __init__(
        self,
        sqlalchemy_url: str,
        channels: Mapping[str, Callable[[], None]],
        *,
        own_token: str = "",
        retry: float = 1.0,
    ) -> None:
        self.dsn = asyncpg_dsn(sqlalchemy_url)
        self.channels = dict(channels)
        self.own_token = own_token
        self.retry = retry
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="postgres listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _callback(self, wake: Callable[[], None]) -> Callable[..., None]:
        def on_notify(_connection: object, _pid: object, _channel: object, payload: object) -> None:
            if not self.own_token or payload != self.own_token:
                wake()

        return on_notify

    def _wake_all(self) -> None:
        for wake in self.channels.values():
            wake()

    async def _run(self) -> None:
        while True:
            connection: Any = None
            try:
                connection = await _connect(self.dsn)
                lost = asyncio.Event()
                connection.add_termination_listener(_callback(lost.set))
                for channel, wake in self.channels.items():
                    await connection.add_listener(channel, self._callback(wake))
                self.connected.set()
                self._wake_all()  # anything sent while we were not listening
                await lost.wait()
                log.warning("lost the LISTEN connection; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN connection failed (%s); retrying", type(exc).__name__)
            finally:
                self.connected.clear()
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(self.retry)


async def _connect(dsn: str) -> Any:
    """Connect; if cancelled midway, finish and close the connection rather than leak it."""
    attempt = asyncio.ensure_future(asyncpg.connect(dsn))
    try:
        return await asyncio.shield(attempt)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            connection = await attempt
            await connection.close()
        raise


def _callback(wake: Callable[[], None]) -> Callable[..., None]:
    def on_notify(*_args: object) -> None:
        wake()

    return on_notify
