"""Workflow definitions: normalising the node spellings clients send, and validating the DAG.

Accepted (wire-spec §13.2): `key` (derived as `<operation>_<position>` when missing),
`operation` / `type` / `kind` (normalised to the canonical `operation`), `config`, `inputs`
and `outputs` as a map `{name: "$context.path"}` or a list `[{name, path}]` (normalised to
the list), `depends_on`, `policy` `{timeout_ms, max_retries}`, and the descriptive
`runtime`, `name`, `description`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fabric_server.workflows import templating
from fabric_server.workflows.bindings import BindingError, parse_path
from fabric_server.workflows.nodes import OperationRegistry
from fabric_server.workflows.nodes.base import NodeSpec
from fabric_server.workflows.nodes.worker import EXPLICIT, worker_operation_problem

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_NODE_FIELDS = frozenset(
    {"key", "operation", "type", "kind", "runtime", "config", "inputs", "outputs"}
    | {"depends_on", "policy", "name", "description"}
)
_DESCRIPTIVE = ("runtime", "name", "description")
_POLICY_KEYS = ("timeout", "timeout_ms", "max_retries")
MAX_TIMEOUT_SECONDS = 86_400
MAX_RETRIES = 20


@dataclass
class Problems:
    """Validation errors, each naming the node, the field and what is wrong."""

    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, node: str | None, path: str, kind: str, message: str) -> None:
        self.errors.append(
            {"node": node, "path": path, "in": "body", "type": kind, "message": message}
        )


def normalise(
    raw_nodes: list[Any], defaults: Mapping[str, Any], registry: OperationRegistry
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The normalised nodes and the problems found (empty when the definition is valid)."""
    problems = Problems()
    _check_defaults(defaults, problems)
    if not raw_nodes:
        problems.add(None, "nodes", "invalid_node", "a workflow needs at least one node")
    nodes = []
    for index, raw in enumerate(raw_nodes):
        node = _normalise_node(index, raw, registry, problems)
        if node is not None:
            nodes.append(node)
    if len(nodes) == len(raw_nodes):
        _check_graph(nodes, problems)
        keys = frozenset(node["key"] for node in nodes)
        for index, node in enumerate(nodes):
            if registry.canonical(node["operation"]) is not None:
                spec = NodeSpec(
                    key=node["key"],
                    operation=node["operation"],
                    config=effective_node(node, defaults, registry, 1.0)["config"],
                    input_names=tuple(b["name"] for b in node["inputs"]),
                    node_keys=keys,
                    upstream=frozenset(upstream_of(nodes, node["key"])),
                )
                _check_config(index, node, spec, registry, problems)
    return nodes, problems.errors


def upstream_of(graph: Sequence[Mapping[str, Any]], key: str) -> set[str]:
    """Every node that `key` depends on, directly or through others (never `key` itself,
    even in a cycle)."""
    edges = {node["key"]: node["depends_on"] for node in graph}
    found: set[str] = set()
    frontier = set(edges.get(key, ()))
    while frontier:
        found |= frontier
        frontier = {dep for k in frontier for dep in edges.get(k, ()) if dep not in found}
    found.discard(key)
    return found


def effective_node(
    node: Mapping[str, Any],
    defaults: Mapping[str, Any],
    registry: OperationRegistry,
    default_timeout: float,
) -> dict[str, Any]:
    """The node as a run executes it: `defaults` under its config, its policy resolved to
    `{"timeout_seconds", "max_retries"}`."""
    config = {k: v for k, v in defaults.items() if k not in _POLICY_KEYS}
    config.update(node["config"])
    policy = node.get("policy") or {}
    timeout = _first(
        _ms(policy.get("timeout_ms")),
        node["config"].get("timeout"),
        _ms(defaults.get("timeout_ms")),
        defaults.get("timeout"),
        default_timeout,
    )
    retries = _first(
        policy.get("max_retries"),
        defaults.get("max_retries"),
        registry.get(node["operation"]).max_retries,
    )
    return {
        **node,
        "config": config,
        "policy": {"timeout_seconds": timeout, "max_retries": retries},
    }


def _normalise_node(
    index: int, raw: Any, registry: OperationRegistry, problems: Problems
) -> dict[str, Any] | None:
    where = f"nodes.{index}"
    if not isinstance(raw, dict):
        problems.add(None, where, "invalid_node", "each node must be an object")
        return None
    given_key = raw.get("key")
    label = given_key if isinstance(given_key, str) else f"nodes[{index}]"
    for unknown in sorted(set(raw) - _NODE_FIELDS):
        problems.add(label, f"{where}.{unknown}", "invalid_node", f"unknown node field {unknown!r}")
    operation = _operation(raw, registry, label, where, problems)
    key = raw.get("key")
    if key is None:
        key = f"{(operation or 'node').replace('.', '_')}_{index + 1}"
    elif not isinstance(key, str) or not _KEY.match(key) or key.startswith("_fabric_"):
        problems.add(
            label,
            f"{where}.key",
            "invalid_node",
            "key must be 1-100 letters, digits, `_ . : -`, start with a letter or digit, "
            "and not start with `_fabric_`",
        )
        key = str(key)
    config = raw.get("config", {})
    if config is None:
        config = {}
    if not isinstance(config, dict):
        problems.add(key, f"{where}.config", "invalid_config", "config must be an object")
        config = {}
    node: dict[str, Any] = {
        "key": key,
        "operation": operation or str(raw.get("operation") or raw.get("type") or ""),
        "config": config,
        "inputs": _bindings(raw.get("inputs"), key, f"{where}.inputs", problems),
        "outputs": _bindings(raw.get("outputs"), key, f"{where}.outputs", problems),
        "depends_on": _depends_on(raw.get("depends_on"), key, f"{where}.depends_on", problems),
        "policy": _policy(raw.get("policy"), key, f"{where}.policy", problems),
    }
    for name in _DESCRIPTIVE:
        if isinstance(raw.get(name), str):
            node[name] = raw[name]
    return node


def _operation(
    raw: Mapping[str, Any], registry: OperationRegistry, label: str, where: str, problems: Problems
) -> str | None:
    given = {f: raw[f] for f in ("operation", "type", "kind") if raw.get(f) is not None}
    config = raw.get("config")
    # The TS builder puts the operation inside config; taken only when it names one we know.
    nested = config.get("operation") if isinstance(config, dict) else None
    if not given and isinstance(nested, str) and registry.canonical(nested) is not None:
        given = {"config.operation": nested}
    if not given:
        problems.add(
            label, where, "invalid_node", "a node needs an `operation` (or `type`, or `kind`)"
        )
        return None
    resolved = set()
    for name, value in given.items():
        canonical = registry.canonical(value) if isinstance(value, str) else None
        if canonical is None:
            problems.add(
                label,
                f"{where}.{name}",
                "unknown_operation",
                _unknown_operation(value, registry),
            )
            return None
        resolved.add(canonical)
    if len(resolved) > 1:
        problems.add(
            label, where, "invalid_node", f"operation, type and kind disagree: {sorted(resolved)}"
        )
        return None
    return resolved.pop()


def _unknown_operation(value: Any, registry: OperationRegistry) -> str:
    known = ", ".join(name for name in registry.names() if name != EXPLICIT)
    message = f"unknown operation {value!r}; built in: {known}"
    if isinstance(value, str) and value:
        message += f"; as a code worker's operation: {worker_operation_problem(value)}"
    return message


def _bindings(value: Any, key: str, where: str, problems: Problems) -> list[dict[str, str]]:
    if value is None:
        return []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = []
        for i, item in enumerate(value):
            if not (isinstance(item, dict) and set(item) <= {"name", "path"}) or "name" not in item:
                problems.add(key, f"{where}.{i}", "invalid_binding", "use {name, path}")
                continue
            pairs.append((item["name"], item.get("path")))
    else:
        problems.add(key, where, "invalid_binding", "bindings must be a map or a list")
        return []
    bindings, seen = [], set()
    for name, path in pairs:
        if not isinstance(name, str) or not name or name in seen:
            problems.add(key, where, "invalid_binding", f"binding names must be unique: {name!r}")
            continue
        seen.add(name)
        try:
            parse_path(path)
        except BindingError as exc:
            problems.add(key, f"{where}.{name}", "invalid_binding", str(exc))
            continue
        bindings.append({"name": name, "path": path})
    return bindings


def _depends_on(value: Any, key: str, where: str, problems: Problems) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(key, where, "invalid_node", "depends_on must be a list of node keys")
        return []
    return list(dict.fromkeys(value))


def _policy(value: Any, key: str, where: str, problems: Problems) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(key, where, "invalid_config", "policy must be an object")
        return {}
    policy = {}
    for name in ("timeout_ms", "max_retries"):
        if value.get(name) is not None:
            problem = _policy_problem(name, value[name])
            if problem:
                problems.add(key, f"{where}.{name}", "invalid_config", problem)
            else:
                policy[name] = value[name]
    return policy


def _policy_problem(name: str, value: Any) -> str | None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if name == "max_retries":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_RETRIES:
            return f"max_retries must be an integer from 0 to {MAX_RETRIES}"
    elif name == "timeout_ms":
        if not number or not 0 < value <= MAX_TIMEOUT_SECONDS * 1000:
            return f"timeout_ms must be a number above 0, at most {MAX_TIMEOUT_SECONDS * 1000}"
    elif not number or not 0 < value <= MAX_TIMEOUT_SECONDS:
        return f"timeout must be a number of seconds above 0, at most {MAX_TIMEOUT_SECONDS}"
    return None


def _check_defaults(defaults: Mapping[str, Any], problems: Problems) -> None:
    for name in _POLICY_KEYS:
        if defaults.get(name) is not None:
            problem = _policy_problem(name, defaults[name])
            if problem:
                problems.add(None, f"defaults.{name}", "invalid_config", problem)


def _check_graph(nodes: list[dict[str, Any]], problems: Problems) -> None:
    keys = [node["key"] for node in nodes]
    for index, key in enumerate(keys):
        if key in keys[:index]:
            problems.add(key, f"nodes.{index}.key", "duplicate_key", f"duplicate node key {key!r}")
    known = set(keys)
    for index, node in enumerate(nodes):
        for dep in node["depends_on"]:
            if dep not in known:
                problems.add(
                    node["key"],
                    f"nodes.{index}.depends_on",
                    "unknown_dependency",
                    f"depends_on names {dep!r}, which is not a node of this workflow",
                )
    for cycle in _cycles({node["key"]: node["depends_on"] for node in nodes}):
        problems.add(
            cycle[0],
            "nodes",
            "cycle",
            "depends_on forms a cycle: " + " -> ".join([*cycle, cycle[0]]),
        )


def _cycles(edges: Mapping[str, list[str]]) -> list[list[str]]:
    """Each distinct cycle among the nodes, found by depth-first search."""
    found: list[list[str]] = []
    seen_sets: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished

    def visit(key: str, path: list[str]) -> None:
        state[key] = 1
        path.append(key)
        for dep in edges.get(key, []):
            if dep not in edges:
                continue
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :]
                if frozenset(cycle) not in seen_sets:
                    seen_sets.add(frozenset(cycle))
                    found.append(cycle)
            elif dep not in state:
                visit(dep, path)
        path.pop()
        state[key] = 2

    for key in edges:
        if key not in state:
            visit(key, [])
    return found


def _check_config(
    index: int,
    node: dict[str, Any],
    spec: NodeSpec,
    registry: OperationRegistry,
    problems: Problems,
) -> None:
    where = f"nodes.{index}.config"
    timeout = node["config"].get("timeout")
    if timeout is not None:
        problem = _policy_problem("timeout", timeout)
        if problem:
            problems.add(node["key"], f"{where}.timeout", "invalid_config", problem)
            return
    operation = registry.get(node["operation"])
    messages = operation.check(spec)
    for name in operation.templated:
        if name in spec.config:
            messages += templating.check(
                spec.config[name],
                f"config.{name}",
                node=spec.key,
                inputs=spec.input_names,
                node_keys=spec.node_keys,
                upstream=spec.upstream,
            )
    for message in messages:
        problems.add(node["key"], where, "invalid_config", message)


def _ms(value: Any) -> float | None:
    # Not a number: already reported by the policy checks, so it sets nothing here.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) / 1000


def _first(*values: Any) -> Any:
    return next(v for v in values if v is not None)
