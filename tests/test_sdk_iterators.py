"""Every paged list walked whole by its iterator, against a real server."""

from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

from webhook_receiver import Receiver

from fabric_platform import AsyncFabricClient, FabricClient
from fabric_server.testing import LiveServer

T = TypeVar("T")
NOOP = [{"key": "step", "operation": "workflow.noop"}]
DEFAULT_ORG = "00000000-0000-0000-0000-000000000010"


def wait_until(probe: Callable[[], T], check: Callable[[T], bool], timeout: float = 20) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if check(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.02)


def ids(items: Any) -> list[str]:
    return [item["id"] for item in items]


def test_iter_runs_with_its_filters(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        wf_id = fabric.upsert_workflow(name="walked", nodes=NOOP)
        other = fabric.upsert_workflow(name="other", nodes=NOOP)
        runs = [fabric.run_workflow(wf_id, {"n": i}) for i in range(5)]
        fabric.run_workflow(other)
        for run_id in runs:
            fabric.wait_for_run(run_id, poll_interval=0.05, timeout=30)

        walked = ids(fabric.iter_runs(workflow_definition_id=wf_id, page_size=2))
        completed = ids(fabric.iter_runs(workflow_definition_id=wf_id, status="completed"))

        assert walked == runs[::-1]  # newest first, every page
        assert completed == walked
        assert len(ids(fabric.iter_runs(page_size=4))) == 6


def test_iter_webhook_deliveries(server: LiveServer) -> None:
    with Receiver() as receiver, FabricClient(base_url=server.base_url) as fabric:
        webhook = fabric.create_webhook(DEFAULT_ORG, receiver.url, ["job.completed"])
        for i in range(3):
            fabric.create_job(modality="text", input={"prompt": f"delivered {i}"})
        wait_until(
            lambda: list(fabric.iter_webhook_deliveries(webhook["id"], page_size=2)),
            lambda deliveries: [d["status"] for d in deliveries] == ["succeeded"] * 3,
        )

        walked = list(fabric.iter_webhook_deliveries(webhook["id"], page_size=2))
        first_page = fabric.list_webhook_deliveries(webhook["id"], limit=2)

        assert len(walked) == 3
        assert len({d["delivery_id"] for d in walked}) == 3
        assert ids(first_page["items"]) == ids(walked[:2])


def test_iter_schedule_history(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        wf_id = fabric.upsert_workflow(name="fired", nodes=NOOP)
        schedule = fabric.create_schedule(wf_id, "0 9 * * *", concurrency_policy="allow")
        runs = [fabric.trigger_schedule(schedule["id"])["run_id"] for _ in range(5)]

        walked = list(fabric.iter_schedule_history(schedule["id"], page_size=2))

        assert [entry["run_id"] for entry in walked] == runs[::-1]
        assert ids(walked) == ids(fabric.schedule_history(schedule["id"]))


def test_iter_gallery_items(server: LiveServer) -> None:
    with FabricClient(base_url=server.base_url) as fabric:
        gallery = fabric.create_gallery("portrait", "Team headshots")
        added = [
            fabric.add_gallery_item(
                gallery["id"], url=f"https://example.com/{i}.png", tags=["team", f"n{i % 2}"]
            )
            for i in range(5)
        ]

        walked = ids(fabric.iter_gallery_items(gallery["id"], page_size=2))
        even = ids(fabric.iter_gallery_items(gallery["id"], ["team", "n0"], page_size=1))

        assert walked == ids(added)  # oldest first
        assert even == ids(added[0::2])


async def test_async_iterators(server: LiveServer) -> None:
    async with AsyncFabricClient(base_url=server.base_url) as fabric:
        wf_id = await fabric.upsert_workflow(name="async-walked", nodes=NOOP)
        runs = [await fabric.run_workflow(wf_id) for _ in range(3)]
        schedule = await fabric.create_schedule(wf_id, "0 9 * * *", concurrency_policy="allow")
        fired = [(await fabric.trigger_schedule(schedule["id"]))["run_id"] for _ in range(3)]
        gallery = await fabric.create_gallery("persona", "Async personas")
        for i in range(3):
            await fabric.add_gallery_item(gallery["id"], url=f"https://example.com/{i}.png")

        walked = [r["id"] async for r in fabric.iter_runs(workflow_definition_id=wf_id)]
        history = [e["run_id"] async for e in fabric.iter_schedule_history(schedule["id"])]
        items = [i async for i in fabric.iter_gallery_items(gallery["id"], page_size=2)]

        assert set(walked) == set(runs + fired)
        assert history == fired[::-1]
        assert len(items) == 3
