"""Which organization a provider call is for, and whether the caller may make it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.access.scope import caller_organization
from fabric_server.access.service import Access, WhenArchived
from fabric_server.errors import Unprocessable

# Running a provider directly is a job without a row: the same permission.
EXECUTE_ACTION = "job.create"
READ_ACTION = "organization.read"


async def authorized_organization(
    access: Access,
    session: AsyncSession,
    principal: Principal,
    requested: str | None,
    action: str,
) -> str:
    """The organization the call runs in, after checking `action` there (404/403, and 409
    for running a provider in an archived organization)."""
    org_id = await caller_organization(access, session, principal, requested)
    if org_id is None:
        raise Unprocessable("organization_id is required: no single organization of yours applies.")
    # Running a provider changes the organization (usage, spend) though it is authorized in
    # a read transaction: an archived organization refuses it all the same.
    when_archived: WhenArchived = "refuse" if action == EXECUTE_ACTION else "refuse_writes"
    await access.authorize(session, principal, org_id, action, when_archived=when_archived)
    return org_id
