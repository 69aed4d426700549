"""Usage of an organization: period totals, individual records, and a daily series."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import List, Optional, Union, cast

from ._base import QueryValue, encode_path, query
from ._core import AsyncClientCore, SyncClientCore
from ._paging import aiterate_pages, iterate_pages
from .types import OrgUsage, UsageDay, UsageRecord, UsageRecordPage

When = Union[str, dt.date, dt.datetime, None]


def iso_string(value: When) -> Optional[str]:
    """Dates and datetimes as ISO strings; a datetime without a zone is read as UTC."""
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def _day(value: When) -> Optional[str]:
    """A day for the daily series: a datetime counts as its (UTC) date."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.date().isoformat()
    return iso_string(value)


def _path(org_id: str, suffix: str = "") -> str:
    return encode_path("/v1/organizations/{}/usage", org_id) + suffix


def _record_params(
    limit: Optional[int],
    cursor: Optional[str],
    provider_id: Optional[str],
    model: Optional[str],
    job_id: Optional[str],
    start: When,
    end: When,
) -> dict[str, QueryValue]:
    return query(
        limit=limit,
        cursor=cursor,
        provider_id=provider_id,
        model=model,
        job_id=job_id,
        start=iso_string(start),
        end=iso_string(end),
    )


class UsageMethods(SyncClientCore):
    def get_org_usage(self, org_id: str, *, start: When = None, end: When = None) -> OrgUsage:
        """Totals over ``[start, end)`` with a per-provider breakdown; by default the current
        calendar month (UTC)."""
        params = query(start=iso_string(start), end=iso_string(end))
        return cast(OrgUsage, self._request("GET", _path(org_id), params=params))

    def get_org_usage_records(
        self,
        org_id: str,
        *,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        provider_id: Optional[str] = None,
        model: Optional[str] = None,
        job_id: Optional[str] = None,
        start: When = None,
        end: When = None,
    ) -> UsageRecordPage:
        """One page of usage records, newest first: ``{"items": [...], "next_cursor": ...}``;
        `iter_org_usage_records` walks every page."""
        params = _record_params(limit, cursor, provider_id, model, job_id, start, end)
        return cast(UsageRecordPage, self._request("GET", _path(org_id, "/records"), params=params))

    def iter_org_usage_records(
        self,
        org_id: str,
        *,
        page_size: int = 50,
        provider_id: Optional[str] = None,
        model: Optional[str] = None,
        job_id: Optional[str] = None,
        start: When = None,
        end: When = None,
    ) -> Iterator[UsageRecord]:
        """Every matching usage record, newest first, fetching pages as iteration needs them."""
        yield from iterate_pages(
            lambda cursor: self.get_org_usage_records(
                org_id,
                limit=page_size,
                cursor=cursor,
                provider_id=provider_id,
                model=model,
                job_id=job_id,
                start=start,
                end=end,
            )
        )

    def get_org_usage_daily(
        self, org_id: str, *, start: When = None, end: When = None
    ) -> List[UsageDay]:
        """One row per UTC day from ``start`` up to (not including) ``end``, days without
        usage included; by default the current month up to today."""
        params = query(start=_day(start), end=_day(end))
        return cast(List[UsageDay], self._request("GET", _path(org_id, "/daily"), params=params))


class AsyncUsageMethods(AsyncClientCore):
    async def get_org_usage(self, org_id: str, *, start: When = None, end: When = None) -> OrgUsage:
        """Totals over ``[start, end)``; by default the current calendar month (UTC)."""
        params = query(start=iso_string(start), end=iso_string(end))
        return cast(OrgUsage, await self._request("GET", _path(org_id), params=params))

    async def get_org_usage_records(
        self,
        org_id: str,
        *,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        provider_id: Optional[str] = None,
        model: Optional[str] = None,
        job_id: Optional[str] = None,
        start: When = None,
        end: When = None,
    ) -> UsageRecordPage:
        """One page of usage records, newest first: ``{"items": [...], "next_cursor": ...}``."""
        params = _record_params(limit, cursor, provider_id, model, job_id, start, end)
        path = _path(org_id, "/records")
        return cast(UsageRecordPage, await self._request("GET", path, params=params))

    async def iter_org_usage_records(
        self,
        org_id: str,
        *,
        page_size: int = 50,
        provider_id: Optional[str] = None,
        model: Optional[str] = None,
        job_id: Optional[str] = None,
        start: When = None,
        end: When = None,
    ) -> AsyncIterator[UsageRecord]:
        """Every matching usage record (``async for``), fetching pages as needed."""
        pages = aiterate_pages(
            lambda cursor: self.get_org_usage_records(
                org_id,
                limit=page_size,
                cursor=cursor,
                provider_id=provider_id,
                model=model,
                job_id=job_id,
                start=start,
                end=end,
            )
        )
        async for record in pages:
            yield record

    async def get_org_usage_daily(
        self, org_id: str, *, start: When = None, end: When = None
    ) -> List[UsageDay]:
        """One row per UTC day in ``[start, end)``, days without usage included."""
        params = query(start=_day(start), end=_day(end))
        path = _path(org_id, "/daily")
        return cast(List[UsageDay], await self._request("GET", path, params=params))
