"""Deliveries to a real receiver on loopback: signatures, filters, retries, history."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter

import httpx
from server_helpers import eventually, wait_for_job
from webhook_helpers import (
    attempts,
    create_webhook,
    finished_job,
    job_event_ids,
    settled_attempts,
    submit_job,
    wait_dispatched,
)
from webhook_receiver import Answer, Received, Receiver

from fabric_platform.webhooks import construct_event
from fabric_server.services import Services

EVENT_KEYS = {
    "id",
    "kind",
    "organization_id",
    "job_id",
    "run_id",
    "node_key",
    "payload",
    "created_at",
    "timestamp",
}


async def test_job_events_reach_the_receiver_signed(
    client: httpx.AsyncClient, services: Services
) -> None:
    with Receiver() as receiver:
        hook = await create_webhook(client, receiver.url, events=["job.*"])
        job_id = await submit_job(client)
        rows = await settled_attempts(client, hook["id"], 3)

    # Deliveries run concurrently: their order is not the events' order.
    expected_ids = sorted(await job_event_ids(services, job_id))
    assert sorted(r.event["id"] for r in receiver.requests) == expected_ids
    for request in receiver.requests:
        assert request.verified(hook["secret"])
        headers = request.headers
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"].startswith("Fabric-Webhooks/")
        assert headers["x-fabric-event"] == request.event["kind"]
        event = construct_event(request.body, headers, hook["secret"])
        assert set(event) == EVENT_KEYS
        assert event["job_id"] == job_id
        assert not request.verified("whsec_some_other_secret")
    assert sorted(r.event["kind"] for r in receiver.requests) == [
        "job.completed",
        "job.created",
        "job.started",
    ]
    completed = [r for r in receiver.requests if r.event["kind"] == "job.completed"]
    assert completed[0].event["payload"]["output"]["text"] == "hi"

    # One attempt each, recorded with the receiver's answer.
    assert sorted(r["event_id"] for r in rows) == expected_ids
    by_delivery = {r.headers["x-fabric-delivery"]: r for r in receiver.requests}
    for row in rows:
        assert row["status"] == "succeeded"
        assert row["attempt"] == 1
        assert row["status_code"] == 200
        assert row["response_body"] == "ok"
        assert row["error"] is None
        assert row["latency_ms"] >= 0
        assert by_delivery[row["delivery_id"]].event["id"] == row["event_id"]
        assert row["event_kind"] == by_delivery[row["delivery_id"]].event["kind"]


async def test_the_body_is_the_event_as_the_stream_sends_it(
    client: httpx.AsyncClient, services: Services
) -> None:
    with Receiver() as receiver:
        hook = await create_webhook(client, receiver.url, events=["job.completed"])
        job_id = await submit_job(client)
        await settled_attempts(client, hook["id"], 1)
        stream: list[str] = []
        async with client.stream(
            "GET", f"/v1/jobs/{job_id}/events", headers={"Accept": "text/event-stream"}
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: ") and '"job.completed"' in line:
                    stream.append(line.removeprefix("data: "))
    assert [r.body.decode() for r in receiver.requests] == stream


async def test_filters_exact_kinds_wildcards_and_resources(client: httpx.AsyncClient) -> None:
    with Receiver() as receiver:
        base = receiver.url
        first_job = await finished_job(client)  # before any webhook: never delivered
        exact = await create_webhook(client, base + "/exact", events=["job.completed"])
        wildcard = await create_webhook(client, base + "/wildcard", events=["job.*"])
        other = await create_webhook(client, base + "/other", events=["workflow.run.*"])
        jobs = [await finished_job(client), await finished_job(client)]
        only = await create_webhook(
            client, base + "/resource", events=["job.*"], resource_filter={"job_id": jobs[1]}
        )
        everything = await create_webhook(client, base + "/all")
        later = await submit_job(client)
        await settled_attempts(client, wildcard["id"], 9)
        await settled_attempts(client, exact["id"], 3)
        await settled_attempts(client, everything["id"], 3)
        await settled_attempts(client, only["id"], 0)

    def seen(path: str) -> list[tuple[str, str]]:
        return sorted(
            (r.event["job_id"], r.event["kind"])
            for r in receiver.requests
            if r.path.endswith(path) and r.event["job_id"]
        )

    kinds = ("job.completed", "job.created", "job.started")
    all_jobs = sorted([*jobs, later])
    assert seen("/exact") == [(j, "job.completed") for j in all_jobs]
    assert seen("/wildcard") == sorted((j, k) for j in all_jobs for k in kinds)
    assert seen("/other") == []
    # Created after jobs[1]'s events: resource-filtered to a job that is over, so nothing.
    assert seen("/resource") == []
    assert seen("/all") == sorted((later, k) for k in kinds)
    assert first_job not in {r.event["job_id"] for r in receiver.requests}
    assert other["events"] == ["workflow.run.*"]


async def test_resource_filter_keeps_only_the_named_job(
    client: httpx.AsyncClient, services: Services
) -> None:
    with Receiver() as receiver:
        hook = await create_webhook(client, receiver.url, events=["job.*"])
        job_a = await submit_job(client, params={"delay_ms": 200})
        response = await client.patch(
            f"/v1/webhooks/{hook['id']}", json={"resource_filter": {"job_id": job_a}}
        )
        assert response.json()["data"]["resource_filter"] == {"job_id": job_a}
        job_b = await finished_job(client)
        await wait_for_job(client, job_a, "completed")
        await wait_dispatched(services, job_b)
        await wait_dispatched(services, job_a)
        rows = await eventually(
            lambda: attempts(client, hook["id"]),
            lambda rs: any(r["event_kind"] == "job.completed" for r in rs),
        )
        await settled_attempts(client, hook["id"], len({r["delivery_id"] for r in rows}))
    assert {r.event["job_id"] for r in receiver.requests} == {job_a}


async def test_a_receiver_down_for_a_while_gets_every_event_once(
    client: httpx.AsyncClient, services: Services
) -> None:
    receiver = Receiver()  # not listening yet: connections are refused
    failures = {"left": 2}
    lock = threading.Lock()

    def flaky(_: Received) -> Answer:
        with lock:  # once back, it still answers 500 twice before it recovers
            if failures["left"] > 0:
                failures["left"] -= 1
                return 500, {}, b"busy"
        return 200, {}, b"ok"

    receiver.answer = flaky
    hook = await create_webhook(client, receiver.url, events=["job.*"], max_retries=20)
    job_id = await submit_job(client)
    try:

        def each_failed_twice(rows: list[dict[str, object]]) -> bool:
            retried = Counter(r["delivery_id"] for r in rows if r["status"] == "retrying")
            return len(retried) == 3 and min(retried.values()) >= 2

        await eventually(lambda: attempts(client, hook["id"]), each_failed_twice)
        receiver.start()
        rows = await settled_attempts(client, hook["id"], 3)
    finally:
        receiver.stop()

    # The receiver's de-duplicated view holds each event exactly once.
    kept = receiver.deduplicated()
    assert sorted(r.event["id"] for r in kept.values()) == sorted(
        await job_event_ids(services, job_id)
    )
    assert len(kept) == 3
    # Retries reuse the delivery id and body; a retried delivery was signed afresh each time.
    for delivery_id, first in kept.items():
        same = [r for r in receiver.requests if r.headers["x-fabric-delivery"] == delivery_id]
        assert {r.body for r in same} == {first.body}
        assert all(r.verified(hook["secret"]) for r in same)

    # One history row per attempt: 1, 2, … n, every one but the last retrying.
    by_delivery: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_delivery.setdefault(str(row["delivery_id"]), []).append(row)
    assert set(by_delivery) == set(kept)
    for history in by_delivery.values():
        assert [r["attempt"] for r in history] == list(range(1, len(history) + 1))
        assert history[-1]["status"] == "succeeded"
        assert len(history) >= 2  # every delivery failed at least once while down
        for failed in history[:-1]:
            assert failed["status"] == "retrying"
            assert failed["next_retry_at"] is not None
            assert failed["error"]
        refused = [r for r in history if r["status_code"] is None]
        assert refused
        assert all("Connect" in str(r["error"]) for r in refused)
    answered_500 = [r for r in rows if r["status_code"] == 500]
    assert len(answered_500) == 2
    assert all(r["response_body"] == "busy" for r in answered_500)


async def test_history_pages_newest_first(client: httpx.AsyncClient) -> None:
    with Receiver() as receiver:
        hook = await create_webhook(client, receiver.url, events=["job.*"])
        await submit_job(client)
        await settled_attempts(client, hook["id"], 3)
    path = f"/v1/webhooks/{hook['id']}/deliveries"
    first = (await client.get(path, params={"limit": 2})).json()["data"]
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    second = (await client.get(path, params={"limit": 2, "cursor": first["next_cursor"]})).json()[
        "data"
    ]
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None
    ids = [r["id"] for r in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    kinds = sorted(r["event_kind"] for r in first["items"] + second["items"])
    assert kinds == ["job.completed", "job.created", "job.started"]


async def test_retry_after_from_the_receiver_is_honoured(client: httpx.AsyncClient) -> None:
    calls = {"n": 0}

    def slow_down(_: Received) -> Answer:
        calls["n"] += 1
        if calls["n"] == 1:
            return 429, {"Retry-After": "1"}, b"slow down"
        return 200, {}, b"ok"

    with Receiver(answer=slow_down) as receiver:
        hook = await create_webhook(client, receiver.url, events=["job.created"])
        await submit_job(client)
        rows = await settled_attempts(client, hook["id"], 1)
    first, second = rows
    assert (first["status"], first["status_code"]) == ("retrying", 429)
    waited = dt.datetime.fromisoformat(first["next_retry_at"]) - dt.datetime.fromisoformat(
        first["completed_at"]
    )
    # The fast test schedule would retry after 0.05 s; the receiver asked for 1 s.
    assert dt.timedelta(seconds=0.95) <= waited <= dt.timedelta(seconds=1.5)
    assert second["status"] == "succeeded"
    arrived = [r for r in receiver.requests]
    assert len(arrived) == 2


async def test_redirects_are_not_followed(client: httpx.AsyncClient) -> None:
    with Receiver() as target:
        moved = Receiver(answer=lambda _: (302, {"Location": target.url}, b""))
        with moved:
            hook = await create_webhook(client, moved.url, events=["job.created"], max_retries=1)
            await submit_job(client)
            rows = await settled_attempts(client, hook["id"], 1)
        assert len(moved.requests) == 2
        assert target.requests == []
    assert [(r["status"], r["status_code"]) for r in rows] == [
        ("retrying", 302),
        ("failed", 302),
    ]
    assert "302" in rows[-1]["error"]


async def test_deleting_a_webhook_stops_its_deliveries(client: httpx.AsyncClient) -> None:
    receiver = Receiver()  # down, so deliveries keep retrying
    hook = await create_webhook(client, receiver.url, events=["job.*"], max_retries=20)
    await submit_job(client)
    await eventually(lambda: attempts(client, hook["id"]), lambda rows: len(rows) >= 4)
    assert (await client.delete(f"/v1/webhooks/{hook['id']}")).status_code == 200
    with receiver:
        second = await create_webhook(client, receiver.url + "/2", events=["job.*"])
        await submit_job(client)
        await settled_attempts(client, second["id"], 3)
    # An attempt a worker was already sending when the webhook was deleted may still land;
    # nothing is attempted again after that (at most one late request per old delivery).
    late = [r.headers["x-fabric-delivery"] for r in receiver.requests if not r.path.endswith("/2")]
    assert len(late) == len(set(late))


async def test_a_disabled_webhook_receives_nothing_and_catches_up_on_nothing(
    client: httpx.AsyncClient,
) -> None:
    with Receiver() as receiver:
        hook = await create_webhook(client, receiver.url, events=["job.*"], active=False)
        await finished_job(client)
        on = await client.patch(f"/v1/webhooks/{hook['id']}", json={"active": True})
        assert on.json()["data"]["active"] is True
        job_id = await submit_job(client)
        await settled_attempts(client, hook["id"], 3)
    assert {json.loads(r.body)["job_id"] for r in receiver.requests} == {job_id}
