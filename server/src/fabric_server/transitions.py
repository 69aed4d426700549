"""Transition tables: the status changes an entity allows, and the event each change emits.

Each entity with a status (workflow runs and nodes, jobs, work items) declares one table;
every status change is checked against it, so a change the design does not allow fails loudly
instead of leaving a row in a state nothing expects.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Generic, TypeVar

S = TypeVar("S", bound=enum.StrEnum)


class IllegalTransition(RuntimeError):
    """A status change outside the entity's transition table. This is a bug in the server,
    never a caller's mistake: it surfaces as a 500 `internal_error`."""


class TransitionTable(Generic[S]):
    """The allowed `source -> target` changes of one entity's status, each with the kind of
    the event it records (None for entities without events, such as work items)."""

    def __init__(self, entity: str, edges: Iterable[tuple[Iterable[S], S, str | None]]) -> None:
        self.entity = entity
        self._events: dict[tuple[S, S], str | None] = {}
        for sources, target, event in edges:
            for source in sources:
                if (source, target) in self._events:
                    raise ValueError(f"{entity}: {source} -> {target} is declared twice")
                self._events[(source, target)] = event

    def allows(self, source: S, target: S) -> bool:
        return (source, target) in self._events

    def check(self, source: S, target: S) -> str | None:
        """The event kind of `source -> target`; raises IllegalTransition if not allowed."""
        try:
            return self._events[(source, target)]
        except KeyError:
            raise IllegalTransition(
                f"a {self.entity} cannot go from {source.value!r} to {target.value!r}"
            ) from None

    def sources(self, target: S) -> frozenset[S]:
        """Every status `target` may be reached from (for guarded SQL updates)."""
        return frozenset(source for source, to in self._events if to == target)

    def event_into(self, target: S) -> str | None:
        """The event of every change into `target`, when they all share one (for guarded SQL
        updates, where the source is only known to be one of `sources(target)`)."""
        kinds = {kind for (_, to), kind in self._events.items() if to == target}
        if len(kinds) != 1:
            raise ValueError(
                f"{self.entity}: changes into {target} record {sorted(map(str, kinds))}"
            )
        return kinds.pop()

    def edges(self) -> list[tuple[S, S, str | None]]:
        """Every allowed change, in declaration order."""
        return [(source, target, kind) for (source, target), kind in self._events.items()]
