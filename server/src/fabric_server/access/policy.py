"""Roles and the actions they allow: one table, read by every authorization check."""

from __future__ import annotations

ROLES = ("owner", "admin", "member", "viewer")

_VIEWER = frozenset({"organization.read", "job.read", "workflow.read", "usage.read"})
_MEMBER = _VIEWER | {"job.create", "workflow.run", "workflow.edit", "schedule.manage"}
_ADMIN = _MEMBER | {"organization.update", "member.invite", "audit.read"}
_OWNER = _ADMIN | {"organization.delete"}

ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "owner": _OWNER,
    "admin": _ADMIN,
    "member": _MEMBER,
    "viewer": _VIEWER,
}


def role_allows(role: str | None, action: str) -> bool:
    return role is not None and action in ROLE_ACTIONS.get(role, frozenset())
