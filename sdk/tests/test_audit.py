"""Audit logs: an organization's and the caller's own, one page at a time or all of them."""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from fabric_platform import AsyncFabricClient, FabricClient

from .helpers import Script, ok

MakeClient = Callable[..., FabricClient]


def entry(entry_id: str) -> dict[str, Any]:
    return {"id": entry_id, "action": "job.create", "actor_type": "user"}


def page(*ids: str, next_cursor: Any = None) -> Any:
    return ok({"items": [entry(i) for i in ids], "next_cursor": next_cursor})


def test_spec_snippets(make_client: MakeClient) -> None:
    script = Script(page("a1"), page("a2"))
    fabric = make_client(script)
    org = {"id": "org-1"}

    org_logs = fabric.get_org_audit_logs(org["id"])
    my_logs = fabric.get_audit_logs()

    assert [e["id"] for e in org_logs["items"]] == ["a1"]
    assert [e["id"] for e in my_logs["items"]] == ["a2"]
    assert [(r.method, r.url.path, dict(r.url.params)) for r in script.requests] == [
        ("GET", "/v1/organizations/org-1/audit-logs", {}),
        ("GET", "/v1/audit-logs", {}),
    ]


def test_filters_travel_as_query_parameters(make_client: MakeClient) -> None:
    script = Script(page())
    fabric = make_client(script)

    fabric.get_org_audit_logs(
        "org-1",
        limit=10,
        cursor="c-1",
        action="secret.set",
        actor_id="p-1",
        resource_type="secret",
        resource_id="OPENAI_API_KEY",
        since=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
        until="2025-02-01T00:00:00Z",
    )
    fabric.get_audit_logs(limit=5, cursor="c-2", action="job.create")

    org_request, my_request = script.requests
    assert dict(org_request.url.params) == {
        "limit": "10",
        "cursor": "c-1",
        "action": "secret.set",
        "actor_id": "p-1",
        "resource_type": "secret",
        "resource_id": "OPENAI_API_KEY",
        "since": "2025-01-01T00:00:00+00:00",
        "until": "2025-02-01T00:00:00Z",
    }
    assert dict(my_request.url.params) == {"limit": "5", "cursor": "c-2", "action": "job.create"}


def test_iterators_walk_every_page_lazily(make_client: MakeClient) -> None:
    script = Script(page("a1", "a2", next_cursor="c-1"), page("a3"))
    fabric = make_client(script)

    entries = fabric.iter_org_audit_logs("org-1", page_size=2, action="job.create")
    assert script.requests == []  # nothing is fetched before iteration starts
    assert [e["id"] for e in entries] == ["a1", "a2", "a3"]

    first, second = script.requests
    assert dict(first.url.params) == {"limit": "2", "action": "job.create"}
    assert dict(second.url.params) == {"limit": "2", "cursor": "c-1", "action": "job.create"}


def test_own_log_iterator(make_client: MakeClient) -> None:
    script = Script(page("m1", next_cursor="c-1"), page("m2"))
    fabric = make_client(script)

    assert [e["id"] for e in fabric.iter_audit_logs(page_size=1)] == ["m1", "m2"]
    assert [r.url.path for r in script.requests] == ["/v1/audit-logs", "/v1/audit-logs"]


async def test_async_twin(make_async_client: Callable[..., AsyncFabricClient]) -> None:
    script = Script(
        page("a1"),
        page("m1"),
        page("a1", next_cursor="c-1"),
        page("a2"),
        page("m1", next_cursor="c-9"),
        page(),
    )
    fabric = make_async_client(script)

    assert (await fabric.get_org_audit_logs("org-1"))["items"][0]["id"] == "a1"
    assert (await fabric.get_audit_logs())["items"][0]["id"] == "m1"
    assert [e["id"] async for e in fabric.iter_org_audit_logs("org-1")] == ["a1", "a2"]
    assert [e["id"] async for e in fabric.iter_audit_logs()] == ["m1"]
    assert [r.url.params.get("cursor") for r in script.requests] == [
        None,
        None,
        None,
        "c-1",
        None,
        "c-9",
    ]
