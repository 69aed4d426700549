"""Jobs: submit one modality execution, read it back, page through jobs, follow its events."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, List, Optional, cast

from ._base import QueryValue, encode_path, query
from ._core import AsyncClientCore, SyncClientCore
from ._errors import FabricWaitTimeout
from ._paging import aiterate_pages, iterate_pages
from ._streaming import JOB_TERMINAL_KINDS, AsyncEventStream, EventStream
from ._waiting import Waiter
from .types import Job, JobPage, JobUsage

JOB_TERMINAL_STATUSES = frozenset({"completed", "failed"})


def _create_body(
    modality: str,
    input: Mapping[str, Any],
    params: Optional[Mapping[str, Any]],
    idempotency_key: Optional[str],
    optional: Mapping[str, Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {"modality": modality, "input": input}
    fields = {"params": params, "idempotency_key": idempotency_key, **optional}
    # Unset fields are left out; an organization still unknown lets the server use the API
    # key's organization.
    body.update({name: value for name, value in fields.items() if value is not None})
    return body


def _list_params(
    limit: int, cursor: Optional[str], organization_id: Optional[str], status: Optional[str]
) -> dict[str, QueryValue]:
    return query(limit=limit, cursor=cursor, organization_id=organization_id, status=status)


def _batch_body(jobs: Sequence[Mapping[str, Any]], org: Optional[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"jobs": [dict(job) for job in jobs]}
    if org is not None:
        body["organization_id"] = org  # for the jobs that name none
    return body


def _batch_key(body: Mapping[str, Any]) -> Optional[str]:
    """A key that makes the batch safe to send again: only when every job carries its own."""
    keys = [job.get("idempotency_key") for job in body["jobs"]]
    if not keys or not all(keys):
        return None
    return "batch-" + hashlib.sha256("\n".join(map(str, keys)).encode()).hexdigest()[:32]


def _wait_params(held: float) -> Optional[dict[str, QueryValue]]:
    return {"wait": round(held, 3)} if held > 0 else None


def _events_path(job_id: str) -> str:
    return encode_path("/v1/jobs/{}/events", job_id)


def _events_params(include_internal: bool) -> dict[str, QueryValue]:
    # The flag is sent only when asked for, as the reference clients do.
    return query(include_internal=True if include_internal else None)


class JobsMethods(SyncClientCore):
    def create_job(
        self,
        modality: str,
        input: Mapping[str, Any],
        params: Optional[Mapping[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        tier: Optional[str] = None,
        priority: Optional[int] = None,
        organization_id: Optional[str] = None,
        wait: Optional[float] = None,
    ) -> Job:
        """Submit a job and return it (status ``pending``); with ``wait`` (seconds), return it
        once it completed or failed, or as it is when ``wait`` runs out first.

        ``model`` pins the model (and so the provider) that runs it; ``tier`` (``"basic"`` or
        ``"premium"``) restricts routing to that tier; a higher ``priority`` (-1000..1000,
        default 0) runs it sooner. The job belongs to ``organization_id``, else to the client's
        organization (with an API key and none given: the key's). With an ``idempotency_key``
        the call is retried safely on failure, and the same key sent again returns the
        original job instead of creating another one.
        """
        org = organization_id or self.organization_id
        optional = {"organization_id": org, "tier": tier, "model": model, "priority": priority}
        body = _create_body(modality, input, params, idempotency_key, optional)
        job = self._request("POST", "/v1/jobs", body=body, idempotency_key=idempotency_key)
        if wait is None:
            return cast(Job, job)
        try:
            return self.wait_for_job(job["id"], timeout=wait)
        except FabricWaitTimeout:
            return self.get_job(job["id"])

    def create_jobs(
        self, jobs: Sequence[Mapping[str, Any]], *, organization_id: Optional[str] = None
    ) -> List[Job]:
        """Submit up to 1,000 jobs in one call and one transaction: all are created, or none
        (an error names the refused one's index in ``details["index"]``).

        Each item takes the keyword arguments of `create_job` (``modality``, ``input``,
        ``params``, ``idempotency_key``, ``model``, ``tier``, ``priority``,
        ``organization_id``); the jobs come back in the same order. Jobs naming no
        organization belong to ``organization_id``, else the client's. The call is retried on
        failure only when every job carries an ``idempotency_key``.
        """
        body = _batch_body(jobs, organization_id or self.organization_id)
        data = self._request("POST", "/v1/jobs/batch", body=body, idempotency_key=_batch_key(body))
        return cast(List[Job], data["items"])

    def wait_for_job(
        self, job_id: str, timeout: Optional[float] = 300.0, poll_interval: float = 1.0
    ) -> Job:
        """Return the job once it is completed or failed.

        Each read asks the server to answer as soon as the job ends (one round trip, no
        polling); against a server without that, it polls every ``poll_interval`` seconds.
        Raises `FabricWaitTimeout` (a builtin `TimeoutError` too) after ``timeout`` seconds;
        ``timeout=None`` waits for as long as it takes.
        """
        waiter = Waiter(
            "job",
            job_id,
            JOB_TERMINAL_STATUSES,
            timeout=timeout,
            poll_interval=poll_interval,
            now=self._clock(),
        )
        path = encode_path("/v1/jobs/{}", job_id)
        while True:
            asked_at = self._clock()
            held = waiter.hold(asked_at)
            job = self._request("GET", path, params=_wait_params(held), held=held)
            pause = waiter.after(job, asked_at, held, self._clock())
            if pause is None:
                return cast(Job, job)
            if pause:
                self._sleep(pause)

    def get_job(self, job_id: str) -> Job:
        """The job ``job_id``; raises `FabricNotFoundError` if it does not exist."""
        return cast(Job, self._request("GET", encode_path("/v1/jobs/{}", job_id)))

    def list_jobs(
        self,
        limit: int = 50,
        cursor: Optional[str] = None,
        *,
        organization_id: Optional[str] = None,
        status: Optional[str] = None,
    ) -> JobPage:
        """One page of jobs: ``{"items": [...], "next_cursor": str | None}``.

        Pass ``next_cursor`` back as ``cursor`` for the following page (`iter_jobs` does so).
        """
        params = _list_params(limit, cursor, organization_id, status)
        return cast(JobPage, self._request("GET", "/v1/jobs", params=params))

    def iter_jobs(
        self,
        *,
        page_size: int = 50,
        organization_id: Optional[str] = None,
        status: Optional[str] = None,
    ) -> Iterator[Job]:
        """Every job across all pages; each page is fetched only when iteration reaches it."""
        yield from iterate_pages(
            lambda cursor: self.list_jobs(
                page_size, cursor, organization_id=organization_id, status=status
            )
        )

    def get_job_usage(self, job_id: str) -> JobUsage:
        """Token and cost totals of the job, with one record per provider execution."""
        return cast(JobUsage, self._request("GET", encode_path("/v1/jobs/{}/usage", job_id)))

    def stream_job_events(self, job_id: str, include_internal: bool = False) -> EventStream:
        """Iterate over the job's events: its history first, then live ones as they happen.

        The iteration ends after ``job.completed`` or ``job.failed``. A dropped connection is
        resumed where it stopped (``Last-Event-ID``). ``include_internal`` adds the platform's
        internal bookkeeping events.
        """
        return self._stream(
            _events_path(job_id),
            _events_params(include_internal),
            terminal_kinds=JOB_TERMINAL_KINDS,
        )


class AsyncJobsMethods(AsyncClientCore):
    async def create_job(
        self,
        modality: str,
        input: Mapping[str, Any],
        params: Optional[Mapping[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        tier: Optional[str] = None,
        priority: Optional[int] = None,
        organization_id: Optional[str] = None,
        wait: Optional[float] = None,
    ) -> Job:
        """Submit a job and return it (status ``pending``), or with ``wait`` once it ended (or
        as it is when ``wait`` runs out); see `FabricClient.create_job`."""
        org = organization_id or self.organization_id
        optional = {"organization_id": org, "tier": tier, "model": model, "priority": priority}
        body = _create_body(modality, input, params, idempotency_key, optional)
        job = await self._request("POST", "/v1/jobs", body=body, idempotency_key=idempotency_key)
        if wait is None:
            return cast(Job, job)
        try:
            return await self.wait_for_job(job["id"], timeout=wait)
        except FabricWaitTimeout:
            return await self.get_job(job["id"])

    async def create_jobs(
        self, jobs: Sequence[Mapping[str, Any]], *, organization_id: Optional[str] = None
    ) -> List[Job]:
        """Submit up to 1,000 jobs in one call and one transaction: all are created, or none
        (an error names the refused one's index in ``details["index"]``).

        Each item takes the keyword arguments of `create_job` (``modality``, ``input``,
        ``params``, ``idempotency_key``, ``model``, ``tier``, ``priority``,
        ``organization_id``); the jobs come back in the same order. Jobs naming no
        organization belong to ``organization_id``, else the client's. The call is retried on
        failure only when every job carries an ``idempotency_key``.
        """
        body = _batch_body(jobs, organization_id or self.organization_id)
        data = await self._request(
            "POST", "/v1/jobs/batch", body=body, idempotency_key=_batch_key(body)
        )
        return cast(List[Job], data["items"])

    async def wait_for_job(
        self, job_id: str, timeout: Optional[float] = 300.0, poll_interval: float = 1.0
    ) -> Job:
        """Return the job once it is completed or failed.

        Each read asks the server to answer as soon as the job ends (one round trip, no
        polling); against a server without that, it polls every ``poll_interval`` seconds.
        Raises `FabricWaitTimeout` (a builtin `TimeoutError` too) after ``timeout`` seconds;
        ``timeout=None`` waits for as long as it takes.
        """
        waiter = Waiter(
            "job",
            job_id,
            JOB_TERMINAL_STATUSES,
            timeout=timeout,
            poll_interval=poll_interval,
            now=self._clock(),
        )
        path = encode_path("/v1/jobs/{}", job_id)
        while True:
            asked_at = self._clock()
            held = waiter.hold(asked_at)
            job = await self._request("GET", path, params=_wait_params(held), held=held)
            pause = waiter.after(job, asked_at, held, self._clock())
            if pause is None:
                return cast(Job, job)
            if pause:
                await self._sleep(pause)

    async def get_job(self, job_id: str) -> Job:
        """The job ``job_id``; raises `FabricNotFoundError` if it does not exist."""
        return cast(Job, await self._request("GET", encode_path("/v1/jobs/{}", job_id)))

    async def list_jobs(
        self,
        limit: int = 50,
        cursor: Optional[str] = None,
        *,
        organization_id: Optional[str] = None,
        status: Optional[str] = None,
    ) -> JobPage:
        """One page of jobs: ``{"items": [...], "next_cursor": str | None}``."""
        params = _list_params(limit, cursor, organization_id, status)
        return cast(JobPage, await self._request("GET", "/v1/jobs", params=params))

    async def iter_jobs(
        self,
        *,
        page_size: int = 50,
        organization_id: Optional[str] = None,
        status: Optional[str] = None,
    ) -> AsyncIterator[Job]:
        """Every job across all pages (``async for``); each page is fetched when reached."""
        pages = aiterate_pages(
            lambda cursor: self.list_jobs(
                page_size, cursor, organization_id=organization_id, status=status
            )
        )
        async for job in pages:
            yield job

    async def get_job_usage(self, job_id: str) -> JobUsage:
        """Token and cost totals of the job, with one record per provider execution."""
        path = encode_path("/v1/jobs/{}/usage", job_id)
        return cast(JobUsage, await self._request("GET", path))

    def stream_job_events(self, job_id: str, include_internal: bool = False) -> AsyncEventStream:
        """``async for`` over the job's events (history, then live), ending after
        ``job.completed``/``job.failed``; ``await`` it first to connect before iterating.
        """
        return self._stream(
            _events_path(job_id),
            _events_params(include_internal),
            terminal_kinds=JOB_TERMINAL_KINDS,
        )
