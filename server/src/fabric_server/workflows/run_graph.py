"""A run's graph, parsed once into frozen node specs.

A run keeps the definition's nodes as they were when it was created (`defaults` applied, the
policy resolved), stored as JSON in `workflow_runs.graph`. `RunGraph.parse` reads that JSON
into typed specs, and `dump` writes the same JSON back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fabric_server.workflows.bindings import Binding

# Descriptive node fields a definition may carry; kept as given, never interpreted.
_LABELS = ("runtime", "name", "description")


@dataclass(frozen=True)
class NodePolicy:
    """How the run executes a node: retries after a transient failure, and the time limit
    of each attempt."""

    max_retries: int
    timeout_seconds: float


@dataclass(frozen=True)
class RunNodeSpec:
    """One node as the run executes it."""

    key: str
    operation: str
    config: Mapping[str, Any]
    inputs: tuple[Binding, ...]
    outputs: tuple[Binding, ...]
    depends_on: tuple[str, ...]
    policy: NodePolicy
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> RunNodeSpec:
        policy = raw["policy"]
        return cls(
            key=raw["key"],
            operation=raw["operation"],
            config=raw.get("config") or {},
            inputs=_bindings(raw.get("inputs")),
            outputs=_bindings(raw.get("outputs")),
            depends_on=tuple(raw.get("depends_on") or ()),
            policy=NodePolicy(
                max_retries=policy["max_retries"], timeout_seconds=policy["timeout_seconds"]
            ),
            labels={name: raw[name] for name in _LABELS if name in raw},
        )

    def dump(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "operation": self.operation,
            "config": dict(self.config),
            "inputs": [{"name": b.name, "path": b.path} for b in self.inputs],
            "outputs": [{"name": b.name, "path": b.path} for b in self.outputs],
            "depends_on": list(self.depends_on),
            "policy": {
                "timeout_seconds": self.policy.timeout_seconds,
                "max_retries": self.policy.max_retries,
            },
            **self.labels,
        }


@dataclass(frozen=True)
class RunGraph:
    """The nodes of a run in definition order, with lookups by key and the dependency
    relations computed once."""

    nodes: tuple[RunNodeSpec, ...]
    _by_key: Mapping[str, RunNodeSpec] = field(init=False, repr=False, compare=False)
    _dependants: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _upstream: frozenset[str] = field(init=False, repr=False, compare=False)
    _downstream: dict[str, frozenset[str]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _ancestors: dict[str, frozenset[str]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        by_key = {node.key: node for node in self.nodes}
        dependants: dict[str, list[str]] = {node.key: [] for node in self.nodes}
        for node in self.nodes:
            for dep in node.depends_on:
                dependants[dep].append(node.key)
        # Frozen: the derived fields are set once, here.
        object.__setattr__(self, "_by_key", by_key)
        object.__setattr__(
            self, "_dependants", {key: tuple(keys) for key, keys in dependants.items()}
        )
        object.__setattr__(
            self, "_upstream", frozenset(dep for node in self.nodes for dep in node.depends_on)
        )

    @classmethod
    def parse(cls, raw: Sequence[Mapping[str, Any]]) -> RunGraph:
        """The graph of the stored JSON (a list of node objects)."""
        return cls(tuple(RunNodeSpec.parse(node) for node in raw))

    def dump(self) -> list[dict[str, Any]]:
        """The JSON to store: `parse(graph.dump())` equals `graph`."""
        return [node.dump() for node in self.nodes]

    def __getitem__(self, key: str) -> RunNodeSpec:
        return self._by_key[key]

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[RunNodeSpec]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def dependants(self, key: str) -> tuple[str, ...]:
        """The nodes that depend on `key` directly, in definition order."""
        return self._dependants[key]

    def is_upstream(self, key: str) -> bool:
        """Whether another node depends on `key` (so its output is not the run's output)."""
        return key in self._upstream

    def downstream(self, key: str) -> frozenset[str]:
        """Every node that depends on `key`, directly or through others (computed on first
        use, then remembered)."""
        found = self._downstream.get(key)
        if found is None:
            reached: set[str] = set()
            frontier = list(self._dependants[key])
            while frontier:
                node = frontier.pop()
                if node not in reached:
                    reached.add(node)
                    frontier.extend(self._dependants[node])
            found = self._downstream[key] = frozenset(reached)
        return found

    def ancestors(self, key: str) -> frozenset[str]:
        """Every node `key` depends on, directly or through others — never `key` itself
        (computed on first use, then remembered)."""
        found = self._ancestors.get(key)
        if found is None:
            reached: set[str] = set()
            frontier = list(self._by_key[key].depends_on)
            while frontier:
                node = frontier.pop()
                if node not in reached and node != key:
                    reached.add(node)
                    frontier.extend(self._by_key[node].depends_on)
            found = self._ancestors[key] = frozenset(reached)
        return found


def _bindings(raw: Sequence[Mapping[str, str]] | None) -> tuple[Binding, ...]:
    return tuple(Binding(item["name"], item["path"]) for item in raw or ())
