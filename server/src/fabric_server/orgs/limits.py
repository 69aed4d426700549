"""An organization's limits on unfinished work: how many jobs and top-level runs it may have
pending or running at once.

The server's settings (`FABRIC_ORG_MAX_ACTIVE_JOBS`, `FABRIC_ORG_MAX_ACTIVE_RUNS`) are every
organization's default. An organization's admins may lower its own limits (to cap what a
runaway script can start); only platform administrators may raise one above the server's
default or lift it (0), since the defaults protect every tenant of a shared server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.access.service import Access
from fabric_server.auth.platform import HOW_TO_BECOME_ONE, PlatformAdmins
from fabric_server.db.base import table_of
from fabric_server.engine.admission import InFlightLimit, LimitOf
from fabric_server.errors import Forbidden, NotFound
from fabric_server.events.outbox import EventRecorder
from fabric_server.orgs.models import Organization, OrganizationLimits

NAMES = ("max_active_jobs", "max_active_runs")
_LIMITS = table_of(OrganizationLimits)


def limit_of(name: str) -> LimitOf:
    """Reads the organization's own `name` limit (for `InFlightLimit`)."""
    column = _LIMITS.c[name]
    query = select(column).where(_LIMITS.c.organization_id == bindparam("org_id"))

    def read(conn: Connection, org_id: str) -> int | None:
        value = conn.execute(query, {"org_id": org_id}).scalar()
        return None if value is None else int(value)

    return read


class LimitService:
    def __init__(
        self,
        access: Access,
        platform_admins: PlatformAdmins,
        events: EventRecorder,
        admissions: Mapping[str, InFlightLimit],
    ) -> None:
        self.access = access
        self.platform_admins = platform_admins
        self.events = events
        self.admissions = dict(admissions)

    async def view(
        self, session: AsyncSession, principal: Principal, org_id: str
    ) -> dict[str, Any]:
        await self.access.authorize(
            session, principal, org_id, "organization.read", when_archived="allow"
        )
        return self._out(org_id, await session.get(OrganizationLimits, org_id))

    async def set(
        self,
        session: AsyncSession,
        principal: Principal,
        org_id: str,
        changes: Mapping[str, int | None],
    ) -> dict[str, Any]:
        # Platform administrators set any organization's limits; its admins lower their own.
        platform_admin = await self.platform_admins.check(session, principal)
        if platform_admin:
            if await session.get(Organization, org_id) is None:
                raise NotFound(f"Organization {org_id} was not found.")
        else:
            await self.access.authorize(session, principal, org_id, "organization.update")
        raising = [name for name, value in changes.items() if self._raises(name, value)]
        if raising and not platform_admin:
            defaults = {name: self.admissions[name].limit for name in raising}
            raise Forbidden(
                "An organization's admins may lower its limits, not raise them above the "
                f"server's defaults {defaults} or lift them (0): ask a platform administrator "
                f"({HOW_TO_BECOME_ONE}).",
                details={"limits": raising, "defaults": defaults},
            )
        row = await session.get(OrganizationLimits, org_id, with_for_update=True)
        if row is None:
            row = OrganizationLimits(organization_id=org_id)
            session.add(row)
        for name, value in changes.items():
            setattr(row, name, value)
        row.updated_by = principal.id
        await session.flush()
        await self.events.record(
            session,
            "organization.limits_updated",
            organization_id=org_id,
            payload={"changed": dict(changes), "by": principal.id},
        )
        for name in changes:
            self.admissions[name].forget(org_id)
        return self._out(org_id, row)

    def _raises(self, name: str, value: int | None) -> bool:
        """Whether setting `name` to `value` allows more than the server's default."""
        default = self.admissions[name].limit
        if value is None:
            return False  # back to the default
        if value == 0:
            return default != 0  # no limit at all
        return default != 0 and value > default

    def _out(self, org_id: str, row: OrganizationLimits | None) -> dict[str, Any]:
        overrides = {name: getattr(row, name) if row is not None else None for name in NAMES}
        defaults = {name: self.admissions[name].limit for name in NAMES}
        effective = {
            name: defaults[name] if overrides[name] is None else overrides[name] for name in NAMES
        }
        return {
            "organization_id": org_id,
            **effective,
            "overrides": overrides,
            "defaults": defaults,
            "updated_at": row.updated_at.isoformat() if row is not None else None,
            "updated_by": row.updated_by if row is not None else None,
        }
