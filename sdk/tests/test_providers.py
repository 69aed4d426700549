"""The provider, usage and gallery methods: paths, bodies and query strings (wire-spec §9.13,
§9.16, §9.17), on both clients."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable

import pytest

from fabric_platform import AsyncFabricClient, FabricClient, FabricServerError

from .helpers import Script, fail, ok

MakeClient = Callable[..., FabricClient]
MakeAsyncClient = Callable[..., AsyncFabricClient]
DEFAULT_ORG = "00000000-0000-0000-0000-000000000010"


def body_of(script: Script) -> Any:
    return json.loads(script.last.content)


def test_providers_and_its_alias(make_client: MakeClient) -> None:
    listed = [{"id": "openai", "modalities": ["text", "embedding"]}]
    script = Script(ok(listed))
    client = make_client(script)

    assert client.providers() == listed
    assert script.last.method == "GET"
    assert str(script.last.url) == "http://localhost:3001/v1/providers"

    assert client.list_providers(organization_id="org-1") == listed
    assert script.last.url.params["organization_id"] == "org-1"


def test_execute_provider_as_in_the_spec(make_client: MakeClient) -> None:
    result = {"provider_id": "openai", "model": "gpt-4o", "output": {"text": "Hi"}}
    script = Script(ok(result))
    client = make_client(script)

    assert (
        client.execute_provider(modality="text", input={"prompt": "Hello"}, model="gpt-4o")
        == result
    )
    assert (script.last.method, script.last.url.path) == ("POST", "/v1/providers/execute")
    assert body_of(script) == {"modality": "text", "input": {"prompt": "Hello"}, "model": "gpt-4o"}


def test_execute_provider_with_every_option(make_client: MakeClient) -> None:
    script = Script(ok({}))
    client = make_client(script)

    client.execute_provider(
        "embedding",
        {"text": "v"},
        params={"dimensions": 8},
        tier="premium",
        organization_id="org-2",
    )

    assert body_of(script) == {
        "modality": "embedding",
        "input": {"text": "v"},
        "params": {"dimensions": 8},
        "tier": "premium",
        "organization_id": "org-2",
    }


def test_execute_provider_is_never_retried(make_client: MakeClient, sleeps: list[float]) -> None:
    script = Script(fail(502, "upstream_error", "The OpenAI API failed (HTTP 500)."))
    client = make_client(script)

    with pytest.raises(FabricServerError) as caught:
        client.execute_provider("text", {"prompt": "x"}, "gpt-4o")

    assert caught.value.code == "upstream_error"
    assert len(script.requests) == 1
    assert sleeps == []


def test_estimate_cost_as_in_the_spec(make_client: MakeClient) -> None:
    estimate = {"provider_id": "echo", "estimated_cost_usd": 0.0, "currency": "USD"}
    script = Script(ok(estimate))
    client = make_client(script)

    assert client.estimate_cost(modality="text", input={"prompt": "Hello"}) == estimate
    assert script.last.url.path == "/v1/providers/estimate"
    assert body_of(script) == {"modality": "text", "input": {"prompt": "Hello"}}

    client.estimate_cost("text", {"prompt": "x"}, "claude-sonnet-4-0", tier="premium")
    assert body_of(script)["model"] == "claude-sonnet-4-0"
    assert body_of(script)["tier"] == "premium"


def test_org_usage(make_client: MakeClient) -> None:
    script = Script(ok({"organization_id": "org-1", "total_runs": 0}))
    client = make_client(script)

    usage = client.get_org_usage("org-1")

    assert usage["total_runs"] == 0
    assert str(script.last.url) == "http://localhost:3001/v1/organizations/org-1/usage"

    client.get_org_usage(
        "org/1", start=dt.date(2026, 3, 1), end=dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc)
    )
    assert script.last.url.raw_path.startswith(b"/v1/organizations/org%2F1/usage?")
    assert script.last.url.params["start"] == "2026-03-01"
    assert script.last.url.params["end"] == "2026-04-01T00:00:00+00:00"


def test_org_usage_records_and_their_pages(make_client: MakeClient) -> None:
    script = Script(
        ok({"items": [{"id": "u3"}, {"id": "u2"}], "next_cursor": "c1"}),
        ok({"items": [{"id": "u1"}], "next_cursor": None}),
    )
    client = make_client(script)

    records = client.get_org_usage_records("org-1")
    assert records["next_cursor"] == "c1"
    assert script.last.url.path == "/v1/organizations/org-1/usage/records"
    assert not script.last.url.params

    script = Script(
        ok({"items": [{"id": "u3"}, {"id": "u2"}], "next_cursor": "c1"}),
        ok({"items": [{"id": "u1"}], "next_cursor": None}),
    )
    client = make_client(script)
    walked = [
        r["id"]
        for r in client.iter_org_usage_records(
            "org-1", page_size=2, provider_id="openai", start="2026-03-01"
        )
    ]
    assert walked == ["u3", "u2", "u1"]
    first, second = (dict(r.url.params) for r in script.requests)
    assert first == {"limit": "2", "provider_id": "openai", "start": "2026-03-01"}
    assert second == {**first, "cursor": "c1"}


def test_org_usage_daily(make_client: MakeClient) -> None:
    days = [{"date": "2026-03-01", "executions": 0}]
    script = Script(ok(days))
    client = make_client(script)

    assert client.get_org_usage_daily("org-1", start="2026-03-01", end="2026-03-02") == days
    assert script.last.url.path == "/v1/organizations/org-1/usage/daily"
    assert dict(script.last.url.params) == {"start": "2026-03-01", "end": "2026-03-02"}

    late_evening = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))
    client.get_org_usage_daily("org-1", start=late_evening, end=dt.date(2026, 3, 5))
    assert dict(script.last.url.params) == {"start": "2026-03-02", "end": "2026-03-05"}


def test_list_galleries_sends_the_client_organization(make_client: MakeClient) -> None:
    script = Script(ok([]))
    client = make_client(script)

    assert client.list_galleries(kind="portrait") == []
    assert script.last.url.path == "/v1/galleries"
    assert dict(script.last.url.params) == {"organization_id": DEFAULT_ORG, "kind": "portrait"}

    client.list_galleries()
    assert dict(script.last.url.params) == {"organization_id": DEFAULT_ORG}


def test_list_gallery_items_joins_tags(make_client: MakeClient) -> None:
    script = Script(ok([]))
    client = make_client(script)

    client.list_gallery_items("gal-1", tags=["professional", "studio"])
    assert script.last.url.path == "/v1/galleries/gal-1/items"
    assert str(script.last.url).endswith("?tags=professional%2Cstudio")

    client.list_gallery_items("gal-1", "casual", limit=10, after="item-9")
    assert dict(script.last.url.params) == {"tags": "casual", "limit": "10", "after": "item-9"}

    client.list_gallery_items("gal-1", tags=[])
    assert not script.last.url.params


def test_gallery_curation(make_client: MakeClient) -> None:
    script = Script(ok({"id": "gal-1"}))
    client = make_client(script, organization_id="org-acme")

    client.create_gallery("portrait", "Team", description="Our people", metadata={"a": 1})
    assert body_of(script) == {
        "kind": "portrait",
        "name": "Team",
        "organization_id": "org-acme",
        "description": "Our people",
        "metadata": {"a": 1},
    }
    client.create_gallery("persona", "Shared", public=True)
    assert body_of(script) == {"kind": "persona", "name": "Shared", "organization_id": None}

    client.add_gallery_item("gal-1", url="https://example.com/a.png", tags=["studio"], title="A")
    assert script.last.url.path == "/v1/galleries/gal-1/items"
    assert body_of(script) == {
        "tags": ["studio"],
        "url": "https://example.com/a.png",
        "title": "A",
    }
    client.add_gallery_item("gal-1", asset_id="asset-1")
    assert body_of(script) == {"tags": [], "asset_id": "asset-1"}

    client.get_gallery("gal-1")
    assert (script.last.method, script.last.url.path) == ("GET", "/v1/galleries/gal-1")
    client.delete_gallery("gal-1")
    assert (script.last.method, script.last.url.path) == ("DELETE", "/v1/galleries/gal-1")
    client.delete_gallery_item("item-1")
    assert (script.last.method, script.last.url.path) == ("DELETE", "/v1/gallery-items/item-1")


async def test_async_twins(make_async_client: MakeAsyncClient) -> None:
    script = Script(ok([]))
    client = make_async_client(script)

    await client.providers()
    assert script.last.url.path == "/v1/providers"
    await client.execute_provider("text", {"prompt": "Hello"}, "gpt-4o")
    assert body_of(script)["model"] == "gpt-4o"
    await client.estimate_cost("text", {"prompt": "Hello"})
    assert script.last.url.path == "/v1/providers/estimate"
    await client.get_org_usage("org-1", start="2026-03-01")
    assert script.last.url.params["start"] == "2026-03-01"
    await client.get_org_usage_daily("org-1")
    assert script.last.url.path == "/v1/organizations/org-1/usage/daily"
    await client.list_galleries("portrait")
    assert script.last.url.params["organization_id"] == DEFAULT_ORG
    await client.list_gallery_items("gal-1", tags=["a", "b"])
    assert script.last.url.params["tags"] == "a,b"
    await client.create_gallery("style", "S")
    assert body_of(script)["organization_id"] == DEFAULT_ORG


async def test_async_usage_records_iterate_every_page(
    make_async_client: MakeAsyncClient,
) -> None:
    script = Script(
        ok({"items": [{"id": "u2"}], "next_cursor": "c1"}),
        ok({"items": [{"id": "u1"}], "next_cursor": None}),
    )
    client = make_async_client(script)

    walked = [r["id"] async for r in client.iter_org_usage_records("org-1", page_size=1)]

    assert walked == ["u2", "u1"]
    assert script.requests[1].url.params["cursor"] == "c1"
