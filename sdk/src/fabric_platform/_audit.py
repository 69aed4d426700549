"""The audit log: an organization's changes (for its admins), and the caller's own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Optional, cast

from ._base import QueryValue, encode_path, query
from ._core import AsyncClientCore, SyncClientCore
from ._paging import aiterate_pages, iterate_pages
from ._usage import When, iso_string
from .types import AuditLog, AuditLogPage

MY_AUDIT_PATH = "/v1/audit-logs"


def _org_path(org_id: str) -> str:
    return encode_path("/v1/organizations/{}/audit-logs", org_id)


def _org_params(
    limit: Optional[int],
    cursor: Optional[str],
    action: Optional[str],
    actor_id: Optional[str],
    resource_type: Optional[str],
    resource_id: Optional[str],
    since: When,
    until: When,
) -> dict[str, QueryValue]:
    return query(
        limit=limit,
        cursor=cursor,
        action=action,
        actor_id=actor_id,
        resource_type=resource_type,
        resource_id=resource_id,
        since=iso_string(since),
        until=iso_string(until),
    )


class AuditMethods(SyncClientCore):
    def get_org_audit_logs(
        self,
        org_id: str,
        *,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        action: Optional[str] = None,
        actor_id: Optional[str] = None,
        resource_type: Optional[str] = None,
        resource_id: Optional[str] = None,
        since: When = None,
        until: When = None,
    ) -> AuditLogPage:
        """One page of the organization's audit log, newest first (needs ``audit.read``:
        admins and owners): ``{"items": [...], "next_cursor": ...}``.

        Filters: ``action`` (e.g. ``"job.create"``), ``actor_id``, ``resource_type``,
        ``resource_id``, and the time range ``[since, until)``. `iter_org_audit_logs` walks
        every page.
        """
        params = _org_params(
            limit, cursor, action, actor_id, resource_type, resource_id, since, until
        )
        return cast(AuditLogPage, self._request("GET", _org_path(org_id), params=params))

    def iter_org_audit_logs(
        self,
        org_id: str,
        *,
        page_size: int = 50,
        action: Optional[str] = None,
        actor_id: Optional[str] = None,
        resource_type: Optional[str] = None,
        resource_id: Optional[str] = None,
        since: When = None,
        until: When = None,
    ) -> Iterator[AuditLog]:
        """Every matching entry of the organization's audit log, newest first, fetching
        pages as iteration needs them."""
        yield from iterate_pages(
            lambda cursor: self.get_org_audit_logs(
                org_id,
                limit=page_size,
                cursor=cursor,
                action=action,
                actor_id=actor_id,
                resource_type=resource_type,
                resource_id=resource_id,
                since=since,
                until=until,
            )
        )

    def get_audit_logs(
        self,
        *,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        action: Optional[str] = None,
    ) -> AuditLogPage:
        """One page of the changes the caller made, in every organization, newest first:
        ``{"items": [...], "next_cursor": ...}``; `iter_audit_logs` walks every page."""
        params = query(limit=limit, cursor=cursor, action=action)
        return cast(AuditLogPage, self._request("GET", MY_AUDIT_PATH, params=params))

    def iter_audit_logs(
        self, *, page_size: int = 50, action: Optional[str] = None
    ) -> Iterator[AuditLog]:
        """Every change the caller made, newest first, fetching pages as needed."""
        yield from iterate_pages(
            lambda cursor: self.get_audit_logs(limit=page_size, cursor=cursor, action=action)
        )


class AsyncAuditMethods(AsyncClientCore):
    async def get_org_audit_logs(
        self,
        org_id: str,
        *,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        action: Optional[str] = None,
        actor_id: Optional[str] = None,
        resource_type: Optional[str] = None,
        resource_id: Optional[str] = None,
        since: When = None,
        until: When = None,
    ) -> AuditLogPage:
        """One page of the organization's audit log, newest first (admins and owners)."""
        params = _org_params(
            limit, cursor, action, actor_id, resource_type, resource_id, since, until
        )
        return cast(AuditLogPage, await self._request("GET", _org_path(org_id), params=params))

    async def iter_org_audit_logs(
        self,
        org_id: str,
        *,
        page_size: int = 50,
        action: Optional[str] = None,
        actor_id: Optional[str] = None,
        resource_type: Optional[str] = None,
        resource_id: Optional[str] = None,
        since: When = None,
        until: When = None,
    ) -> AsyncIterator[AuditLog]:
        """Every matching entry of the organization's audit log (``async for``)."""
        pages = aiterate_pages(
            lambda cursor: self.get_org_audit_logs(
                org_id,
                limit=page_size,
                cursor=cursor,
                action=action,
                actor_id=actor_id,
                resource_type=resource_type,
                resource_id=resource_id,
                since=since,
                until=until,
            )
        )
        async for entry in pages:
            yield entry

    async def get_audit_logs(
        self,
        *,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        action: Optional[str] = None,
    ) -> AuditLogPage:
        """One page of the changes the caller made, newest first."""
        params = query(limit=limit, cursor=cursor, action=action)
        return cast(AuditLogPage, await self._request("GET", MY_AUDIT_PATH, params=params))

    async def iter_audit_logs(
        self, *, page_size: int = 50, action: Optional[str] = None
    ) -> AsyncIterator[AuditLog]:
        """Every change the caller made (``async for``), fetching pages as needed."""
        pages = aiterate_pages(
            lambda cursor: self.get_audit_logs(limit=page_size, cursor=cursor, action=action)
        )
        async for entry in pages:
            yield entry
