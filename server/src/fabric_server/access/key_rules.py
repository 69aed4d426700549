"""Who may make and manage which API keys: never a key more powerful than oneself.

A key acts as its creator, so its secret (handed out by rotation) is that creator's power.
Managing a key — reading, rotating, disabling, deleting it — therefore needs at least the
role its creator holds now, and a credential limited to some scopes manages only keys
limited to those scopes or fewer. A new key's scopes stay within those of the credential
making it.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access import repository
from fabric_server.access.models import ApiKey
from fabric_server.access.policy import ALL_ACTIONS, ROLE_RANK
from fabric_server.access.principal import Principal
from fabric_server.errors import Forbidden


def limited(principal: Principal) -> bool:
    """True for a credential restricted to some scopes (an API key without `*`)."""
    return bool(principal.scopes) and ALL_ACTIONS not in principal.scopes


def within(scopes: Collection[str], principal: Principal) -> bool:
    """Whether a key with `scopes` can do no more than `principal`'s scopes allow.

    Empty scopes and `*` both mean "everything the creator may do".
    """
    if not limited(principal):
        return True
    return bool(scopes) and ALL_ACTIONS not in scopes and set(scopes) <= set(principal.scopes)


def scopes_for_new_key(principal: Principal, wanted: list[str]) -> list[str]:
    """The scopes a key made by `principal` gets: `wanted`, or — when the credential making
    it is itself limited and asks for none — that credential's own scopes. 403 when a
    limited credential asks for `*`."""
    if not limited(principal):
        return wanted
    if not wanted:
        return sorted(principal.scopes)
    if ALL_ACTIONS in wanted:
        raise Forbidden(
            "A key limited to some scopes cannot make a key with every scope (*).",
            details={"scopes": [ALL_ACTIONS]},
        )
    return wanted


async def may_manage(
    session: AsyncSession, principal: Principal, caller_role: str, key: ApiKey
) -> bool:
    """Whether `principal` (holding `caller_role` in the key's organization) may manage
    `key`: the key's creator does not outrank the caller now, and the key's scopes fit
    within the caller's."""
    if not within(key.scopes, principal):
        return False
    creator_role = await repository.member_role(session, key.organization_id, key.created_by)
    if creator_role is None:  # a departed creator's key no longer works: anyone may clean up
        return True
    return ROLE_RANK.get(creator_role, 0) <= ROLE_RANK.get(caller_role, -1)


async def check_manageable(
    session: AsyncSession, principal: Principal, caller_role: str, key: ApiKey
) -> None:
    """403 unless `principal` may manage `key` (see `may_manage`)."""
    if not await may_manage(session, principal, caller_role, key):
        raise Forbidden(
            f"API key {key.id} acts with more power than yours (its creator's role or its "
            "scopes): only someone with at least that power may read or change it."
        )
