"""Roles and the actions they allow: one table, read by every authorization check.

Actions are `<resource>.<verb>` strings (wire-spec §16); they double as API-key scopes.
`docs/rbac.md` shows the same table as a role → action matrix (a test keeps them in step).
"""

from __future__ import annotations

ROLES = ("owner", "admin", "member", "viewer")
ROLE_RANK = {role: rank for rank, role in enumerate(reversed(ROLES))}

_VIEWER = frozenset(
    {"organization.read", "job.read", "workflow.read", "usage.read", "gallery.read"}
)
_MEMBER = _VIEWER | {
    "job.create",
    "workflow.run",
    "workflow.edit",
    "schedule.manage",
    "gallery.manage",
    "worker.execute",
}
_ADMIN = _MEMBER | {
    "organization.update",
    "member.invite",
    "member.manage",
    "audit.read",
    "budget.update",
    "team.create",
    "secret.manage",
    "webhook.manage",
    "api_key.manage",
    "permission.manage",
}
_OWNER = _ADMIN | {"organization.archive", "organization.delete"}

ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "owner": _OWNER,
    "admin": _ADMIN,
    "member": _MEMBER,
    "viewer": _VIEWER,
}

# Every action the server knows, in a stable order (the union of the role table).
ACTIONS: tuple[str, ...] = tuple(sorted(_OWNER))

# Bare verbs some clients send (wire-spec §16): `read` and `invite`.
ACTION_ALIASES = {"read": "organization.read", "invite": "member.invite"}

# In an API key's scopes (or a grant), `*` stands for every action.
ALL_ACTIONS = "*"


def canonical_action(action: str) -> str:
    """The action an alias stands for (`read` → `organization.read`); others unchanged."""
    return ACTION_ALIASES.get(action, action)


def is_known_action(action: str) -> bool:
    return canonical_action(action) in ROLE_ACTIONS["owner"]


def role_allows(role: str | None, action: str) -> bool:
    return role is not None and canonical_action(action) in ROLE_ACTIONS.get(role, frozenset())


def role_at_least(role: str | None, minimum: str) -> bool:
    """True when `role` ranks at or above `minimum` (owner > admin > member > viewer)."""
    return role is not None and ROLE_RANK.get(role, -1) >= ROLE_RANK[minimum]
