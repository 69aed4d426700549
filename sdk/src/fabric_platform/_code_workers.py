"""Code workers as an operator sees them: which are online, what they serve, how busy they are.

(The worker processes themselves are `Worker` / `AsyncWorker`.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Optional, cast

from ._base import QueryValue, encode_path, query
from ._core import AsyncClientCore, SyncClientCore
from ._paging import aiterate_pages, iterate_pages
from .types import CodeWorker, CodeWorkerPage

_WORKERS = "/v1/workers"


def _list_params(
    limit: int, cursor: Optional[str], organization_id: Optional[str], status: Optional[str]
) -> dict[str, QueryValue]:
    return query(limit=limit, cursor=cursor, organization_id=organization_id, status=status)


class CodeWorkersMethods(SyncClientCore):
    def list_workers(
        self,
        limit: int = 50,
        cursor: Optional[str] = None,
        *,
        organization_id: Optional[str] = None,
        status: Optional[str] = None,
    ) -> CodeWorkerPage:
        """One page of code workers, newest first: ``{"items": [...], "next_cursor"}``.

        ``status``: ``"online"``, ``"stale"`` (not heard from for three heartbeats) or
        ``"offline"`` (deregistered).
        """
        params = _list_params(limit, cursor, organization_id, status)
        return cast(CodeWorkerPage, self._request("GET", _WORKERS, params=params))

    def iter_workers(
        self,
        *,
        page_size: int = 50,
        organization_id: Optional[str] = None,
        status: Optional[str] = None,
    ) -> Iterator[CodeWorker]:
        """Every code worker across all pages, fetched as iteration needs them."""
        yield from iterate_pages(
            lambda cursor: self.list_workers(
                page_size, cursor, organization_id=organization_id, status=status
            )
        )

    def get_worker(self, worker_id: str) -> CodeWorker:
        """One code worker: its operations, status, tasks in flight and last heartbeat."""
        return cast(CodeWorker, self._request("GET", encode_path(_WORKERS + "/{}", worker_id)))

    def deregister_worker(self, worker_id: str) -> CodeWorker:
        """Mark a worker stopped: the tasks it still holds go back to the queue at once."""
        path = encode_path(_WORKERS + "/{}", worker_id)
        return cast(CodeWorker, self._request("DELETE", path))


class AsyncCodeWorkersMethods(AsyncClientCore):
    async def list_workers(
        self,
        limit: int = 50,
        cursor: Optional[str] = None,
        *,
        organization_id: Optional[str] = None,
        status: Optional[str] = None,
    ) -> CodeWorkerPage:
        """One page of code workers, newest first: ``{"items": [...], "next_cursor"}``."""
        params = _list_params(limit, cursor, organization_id, status)
        return cast(CodeWorkerPage, await self._request("GET", _WORKERS, params=params))

    async def iter_workers(
        self,
        *,
        page_size: int = 50,
        organization_id: Optional[str] = None,
        status: Optional[str] = None,
    ) -> AsyncIterator[CodeWorker]:
        """Every code worker across all pages (``async for``)."""
        pages = aiterate_pages(
            lambda cursor: self.list_workers(
                page_size, cursor, organization_id=organization_id, status=status
            )
        )
        async for worker in pages:
            yield worker

    async def get_worker(self, worker_id: str) -> CodeWorker:
        """One code worker: its operations, status, tasks in flight and last heartbeat."""
        path = encode_path(_WORKERS + "/{}", worker_id)
        return cast(CodeWorker, await self._request("GET", path))

    async def deregister_worker(self, worker_id: str) -> CodeWorker:
        """Mark a worker stopped: the tasks it still holds go back to the queue at once."""
        path = encode_path(_WORKERS + "/{}", worker_id)
        return cast(CodeWorker, await self._request("DELETE", path))
