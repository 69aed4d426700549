"""Iterators over paged lists: cursor pages, and lists continued after the last id seen."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from fabric_platform import AsyncFabricClient, FabricClient

from .helpers import Script, ok

MakeClient = Callable[..., FabricClient]
MakeAsyncClient = Callable[..., AsyncFabricClient]


def cursor_page(*ids: str, next_cursor: Any = None) -> Any:
    return ok({"items": [{"id": i} for i in ids], "next_cursor": next_cursor})


def plain_page(*ids: str) -> Any:
    return ok([{"id": i} for i in ids])


def params(script: Script) -> list[dict[str, str]]:
    return [dict(r.url.params) for r in script.requests]


def test_iter_runs_passes_the_filters_to_every_page(make_client: MakeClient) -> None:
    script = Script(cursor_page("r1", "r2", next_cursor="c-1"), cursor_page("r3"))
    fabric = make_client(script)

    runs = fabric.iter_runs(status="completed", workflow_definition_id="wf-1", page_size=2)

    assert [r["id"] for r in runs] == ["r1", "r2", "r3"]
    assert params(script) == [
        {"status": "completed", "workflow_definition_id": "wf-1", "limit": "2"},
        {"status": "completed", "workflow_definition_id": "wf-1", "limit": "2", "cursor": "c-1"},
    ]


def test_iter_webhook_deliveries(make_client: MakeClient) -> None:
    script = Script(cursor_page("d1", next_cursor="c-1"), cursor_page("d2"))
    fabric = make_client(script)

    assert [d["id"] for d in fabric.iter_webhook_deliveries("wh-1", page_size=1)] == ["d1", "d2"]
    assert [r.url.path for r in script.requests] == ["/v1/webhooks/wh-1/deliveries"] * 2
    assert params(script)[1] == {"limit": "1", "cursor": "c-1"}


def test_a_cursor_that_does_not_move_ends_the_iteration(make_client: MakeClient) -> None:
    script = Script(cursor_page("r1", next_cursor="same"), cursor_page("r2", next_cursor="same"))

    assert [r["id"] for r in make_client(script).iter_runs()] == ["r1", "r2"]
    assert len(script.requests) == 2


def test_schedule_history_continues_after_the_last_id(make_client: MakeClient) -> None:
    script = Script(plain_page("h5", "h4"), plain_page("h3", "h2"), plain_page("h1"))
    fabric = make_client(script)

    entries = fabric.iter_schedule_history("sch-1", page_size=2)

    assert [e["id"] for e in entries] == ["h5", "h4", "h3", "h2", "h1"]
    assert params(script) == [
        {"limit": "2"},
        {"limit": "2", "cursor": "h4"},
        {"limit": "2", "cursor": "h2"},
    ]


def test_a_full_last_page_costs_one_empty_request(make_client: MakeClient) -> None:
    script = Script(plain_page("i1", "i2"), plain_page())
    fabric = make_client(script)

    items = fabric.iter_gallery_items("g-1", ["studio"], page_size=2)

    assert [i["id"] for i in items] == ["i1", "i2"]
    assert params(script) == [
        {"tags": "studio", "limit": "2"},
        {"tags": "studio", "limit": "2", "after": "i2"},
    ]


def test_nothing_is_fetched_before_iteration(make_client: MakeClient) -> None:
    script = Script(plain_page())
    fabric = make_client(script)

    fabric.iter_gallery_items("g-1")
    fabric.iter_schedule_history("sch-1")
    fabric.iter_runs()

    assert script.requests == []


@pytest.mark.parametrize(
    ("name", "args", "path"),
    [
        ("iter_runs", (), "/v1/workflow-runs"),
        ("iter_webhook_deliveries", ("wh-1",), "/v1/webhooks/wh-1/deliveries"),
    ],
)
async def test_async_cursor_iterators(
    make_async_client: MakeAsyncClient, name: str, args: tuple[str, ...], path: str
) -> None:
    script = Script(cursor_page("a", next_cursor="c-1"), cursor_page("b"))
    fabric = make_async_client(script)

    assert [x["id"] async for x in getattr(fabric, name)(*args)] == ["a", "b"]
    assert [r.url.path for r in script.requests] == [path, path]


@pytest.mark.parametrize(
    ("name", "args", "key"),
    [
        ("iter_schedule_history", ("sch-1",), "cursor"),
        ("iter_gallery_items", ("g-1",), "after"),
    ],
)
async def test_async_after_id_iterators(
    make_async_client: MakeAsyncClient, name: str, args: tuple[str, ...], key: str
) -> None:
    script = Script(plain_page("a"), plain_page())
    fabric = make_async_client(script)

    assert [x["id"] async for x in getattr(fabric, name)(*args, page_size=1)] == ["a"]
    assert params(script)[1] == {"limit": "1", key: "a"}
