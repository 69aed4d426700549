"""The jobs methods: paths, bodies, query parameters and paging (wire-spec §9.3, §5)."""

from __future__ import annotations

from typing import Any, Callable

import httpx
import pytest

from fabric_platform import FabricClient

from .helpers import Script, ok

MakeClient = Callable[..., FabricClient]
DEFAULT_ORG = "00000000-0000-0000-0000-000000000010"


def job(job_id: str, status: str = "pending") -> dict[str, Any]:
    return {"id": job_id, "job_id": job_id, "status": status, "workflow_run_id": "run-1"}


def test_create_job_as_in_the_spec(make_client: MakeClient) -> None:
    script = Script(ok(job("job-1"), status=201))
    client = make_client(script)

    created = client.create_job(
        modality="text",
        input={"prompt": "Summarize this article"},
        idempotency_key="unique-key-123",
    )

    assert created["id"] == "job-1"
    assert script.last.method == "POST"
    assert script.last.url.path == "/v1/jobs"
    assert script.bodies() == [
        {
            "modality": "text",
            "input": {"prompt": "Summarize this article"},
            "organization_id": DEFAULT_ORG,
            "idempotency_key": "unique-key-123",
        }
    ]
    assert script.last.headers["Idempotency-Key"] == "unique-key-123"


def test_create_job_with_every_field(make_client: MakeClient) -> None:
    script = Script(ok(job("job-1"), status=201))
    client = make_client(script, organization_id="org-default")

    client.create_job(
        "image",
        {"prompt": "a cat"},
        {"size": "512"},
        "key-1",
        tier="premium",
        organization_id="org-other",
    )

    assert script.bodies() == [
        {
            "modality": "image",
            "input": {"prompt": "a cat"},
            "organization_id": "org-other",
            "params": {"size": "512"},
            "idempotency_key": "key-1",
            "tier": "premium",
        }
    ]


def test_create_job_uses_the_client_organization(make_client: MakeClient) -> None:
    script = Script(ok(job("job-1"), status=201))
    client = make_client(script, organization_id="org-acme")

    client.create_job(modality="text", input={"prompt": "hi"})

    assert script.bodies()[0]["organization_id"] == "org-acme"
    assert "Idempotency-Key" not in script.last.headers


def test_get_job(make_client: MakeClient) -> None:
    script = Script(ok(job("job-1", "completed")))
    client = make_client(script)

    assert client.get_job("job-1")["status"] == "completed"
    assert script.last.method == "GET"
    assert script.last.url.path == "/v1/jobs/job-1"


def test_get_job_usage(make_client: MakeClient) -> None:
    usage = {"job_id": "job-1", "input_tokens": 3, "output_tokens": 5, "records": []}
    script = Script(ok(usage))
    client = make_client(script)

    assert client.get_job_usage("job-1") == usage
    assert script.last.url.path == "/v1/jobs/job-1/usage"


def test_list_jobs_default_query(make_client: MakeClient) -> None:
    page = {"items": [job("job-1")], "next_cursor": None}
    script = Script(ok(page))
    client = make_client(script)

    assert client.list_jobs() == page
    assert script.last.url.path == "/v1/jobs"
    assert dict(script.last.url.params) == {"limit": "50"}


def test_list_jobs_with_cursor_and_filters(make_client: MakeClient) -> None:
    script = Script(ok({"items": [], "next_cursor": None}))
    client = make_client(script)

    client.list_jobs(limit=20, cursor="c-1", organization_id="org-1", status="completed")

    assert dict(script.last.url.params) == {
        "limit": "20",
        "cursor": "c-1",
        "organization_id": "org-1",
        "status": "completed",
    }


def pages(*pages: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    """A handler serving ``pages`` keyed by the cursor they answer (None for the first)."""
    by_cursor = {page.pop("cursor"): page for page in pages}

    def handle(request: httpx.Request) -> httpx.Response:
        return ok(by_cursor[request.url.params.get("cursor")])

    return handle


def test_iter_jobs_walks_every_page(make_client: MakeClient) -> None:
    script = Script(
        pages(
            {"cursor": None, "items": [job("1"), job("2")], "next_cursor": "c2"},
            {"cursor": "c2", "items": [job("3")], "next_cursor": "c3"},
            {"cursor": "c3", "items": [job("4")], "next_cursor": None},
        )
    )
    client = make_client(script)

    ids = [j["id"] for j in client.iter_jobs(page_size=2, status="pending")]

    assert ids == ["1", "2", "3", "4"]
    assert [r.url.params.get("cursor") for r in script.requests] == [None, "c2", "c3"]
    assert {r.url.params["limit"] for r in script.requests} == {"2"}
    assert {r.url.params["status"] for r in script.requests} == {"pending"}


def test_iter_jobs_is_lazy(make_client: MakeClient) -> None:
    script = Script(
        pages(
            {"cursor": None, "items": [job("1")], "next_cursor": "c2"},
            {"cursor": "c2", "items": [job("2")], "next_cursor": None},
        )
    )
    client = make_client(script)

    jobs = client.iter_jobs()
    assert script.requests == []
    assert next(jobs)["id"] == "1"
    assert len(script.requests) == 1


def test_iter_jobs_stops_on_a_cursor_that_does_not_move(make_client: MakeClient) -> None:
    script = Script(
        pages(
            {"cursor": None, "items": [job("1")], "next_cursor": "same"},
            {"cursor": "same", "items": [job("2")], "next_cursor": "same"},
        )
    )
    client = make_client(script)

    assert [j["id"] for j in client.iter_jobs()] == ["1", "2"]
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    "data",
    [
        [job("1"), job("2")],
        {"items": [job("1"), job("2")]},
        {"items": [job("1"), job("2")], "next_cursor": ""},
    ],
)
def test_iter_jobs_accepts_single_page_shapes(make_client: MakeClient, data: Any) -> None:
    client = make_client(Script(ok(data)))

    assert [j["id"] for j in client.iter_jobs()] == ["1", "2"]
