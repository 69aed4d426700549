"""Size limits: request bodies (declared or chunked) and what is copied into events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from server_helpers import assert_error, wait_for_job
from sqlalchemy import select
from workflow_helpers import app_client

from fabric_server.events.models import Event
from fabric_server.testing import fast_settings


async def test_a_body_over_the_limit_is_refused_with_or_without_content_length(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path, max_request_bytes=4096)
    async with app_client(settings) as (client, _services):
        fits = {"modality": "text", "input": {"prompt": "x" * 3000}}
        assert (await client.post("/v1/jobs", json=fits)).status_code == 201
        large = b'{"modality": "text", "input": {"prompt": "' + b"x" * 5000 + b'"}}'
        declared = await client.post(
            "/v1/jobs", content=large, headers={"content-type": "application/json"}
        )
        body = assert_error(declared, 413, "payload_too_large")
        assert body["error"]["details"] == {"max_bytes": 4096}

        read: list[int] = []

        async def chunks() -> AsyncIterator[bytes]:
            for offset in range(0, len(large), 1000):
                read.append(offset)
                yield large[offset : offset + 1000]

        chunked = await client.post(
            "/v1/jobs", content=chunks(), headers={"content-type": "application/json"}
        )
        assert "content-length" not in chunked.request.headers
        assert_error(chunked, 413, "payload_too_large")
        # Not JSON: counted the same way.
        text = await client.post(
            "/v1/jobs", content=large, headers={"content-type": "application/octet-stream"}
        )
        assert_error(text, 413, "payload_too_large")
        listed = await client.get("/v1/jobs")
        assert len(listed.json()["data"]["items"]) == 1


async def test_large_outputs_are_left_out_of_event_payloads(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path, event_payload_max_bytes=4096)
    async with app_client(settings) as (client, services):
        prompt = "word " * 4000
        created = await client.post(
            "/v1/jobs", json={"modality": "text", "input": {"prompt": prompt}}
        )
        assert created.status_code == 201, created.text
        job = await wait_for_job(client, created.json()["data"]["id"])
        assert job["status"] == "completed"
        assert job["output"]["text"] == prompt  # the job keeps the whole value
        async with services.db.read() as session:
            events = (await session.scalars(select(Event).where(Event.job_id == job["id"]))).all()
        completed = next(e for e in events if e.kind == "job.completed")
        assert completed.payload["truncated"] == ["output"]
        assert completed.payload["payload_bytes"] > 20_000
        assert completed.payload["provider_id"] == "echo"
        assert "output" not in completed.payload
        small = await client.post("/v1/jobs", json={"modality": "text", "input": {"prompt": "hi"}})
        done = await wait_for_job(client, small.json()["data"]["id"])
        async with services.db.read() as session:
            events = (await session.scalars(select(Event).where(Event.job_id == done["id"]))).all()
        payload = next(e for e in events if e.kind == "job.completed").payload
        assert payload["output"]["text"] == "hi"
        assert "truncated" not in payload
