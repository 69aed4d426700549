"""An organization's limits on unfinished jobs and workflow runs."""

from __future__ import annotations

from typing import Any, Optional, Union, cast

from ._base import encode_path
from ._core import AsyncClientCore, SyncClientCore
from .types import OrgLimits


class _Keep:
    """A limit left out of `set_org_limits`: it keeps its value."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()
Limit = Union[Optional[int], _Keep]


def _limits_path(org_id: str) -> str:
    return encode_path("/v1/organizations/{}/limits", org_id)


def _limits_body(max_active_jobs: Limit, max_active_runs: Limit) -> dict[str, Any]:
    given = {"max_active_jobs": max_active_jobs, "max_active_runs": max_active_runs}
    return {name: value for name, value in given.items() if not isinstance(value, _Keep)}


class LimitsMethods(SyncClientCore):
    def get_org_limits(self, org_id: str) -> OrgLimits:
        """How many jobs and top-level runs the organization may have unfinished at once:
        the limits in effect, its own (``overrides``, None: none) and the server's
        ``defaults``; 0 means no limit."""
        return cast(OrgLimits, self._request("GET", _limits_path(org_id)))

    def set_org_limits(
        self, org_id: str, *, max_active_jobs: Limit = KEEP, max_active_runs: Limit = KEEP
    ) -> OrgLimits:
        """Set the organization's own limits; None goes back to the server's default, a
        limit not given keeps its value. Its admins may lower them; raising one above the
        server's default, or lifting it (0), takes a platform administrator."""
        body = _limits_body(max_active_jobs, max_active_runs)
        return cast(OrgLimits, self._request("PUT", _limits_path(org_id), body=body))


class AsyncLimitsMethods(AsyncClientCore):
    async def get_org_limits(self, org_id: str) -> OrgLimits:
        """How many jobs and top-level runs the organization may have unfinished at once."""
        return cast(OrgLimits, await self._request("GET", _limits_path(org_id)))

    async def set_org_limits(
        self, org_id: str, *, max_active_jobs: Limit = KEEP, max_active_runs: Limit = KEEP
    ) -> OrgLimits:
        """Set the organization's own limits; None goes back to the server's default."""
        body = _limits_body(max_active_jobs, max_active_runs)
        return cast(OrgLimits, await self._request("PUT", _limits_path(org_id), body=body))
