"""Sending a finished delivery again: the same body under the same delivery id, one attempt."""

from __future__ import annotations

from pathlib import Path

from server_helpers import assert_error, eventually
from webhook_helpers import attempts, create_webhook, running_app, settled_attempts, submit_job
from webhook_receiver import Answer, Received, Receiver

from fabric_server.testing import fast_settings


async def test_a_failed_delivery_is_sent_again_once(database_url: str, tmp_path: Path) -> None:
    settings = fast_settings(database_url, tmp_path)
    receiver_up = False

    def answer(_: Received) -> Answer:
        return (200 if receiver_up else 500), {}, b""

    async with running_app(settings) as (client, _):
        with Receiver(answer=answer) as receiver:
            hook = await create_webhook(
                client, receiver.url, events=["job.completed"], max_retries=0
            )
            await submit_job(client)
            (failed,) = await settled_attempts(client, hook["id"], 1)
            assert failed["status"] == "failed"
            path = f"/v1/webhooks/{hook['id']}/deliveries/{failed['delivery_id']}/redeliver"

            receiver_up = True
            response = await client.post(path)
            assert response.status_code == 202, response.text
            pending = response.json()["data"]
            assert (pending["delivery_id"], pending["attempt"]) == (failed["delivery_id"], 2)
            assert pending["status"] == "pending"

            async def second() -> list[str]:
                return [a["status"] for a in await attempts(client, hook["id"])]

            assert await eventually(second, lambda s: s == ["failed", "succeeded"]) == [
                "failed",
                "succeeded",
            ]
            first, again = receiver.requests
            assert again.body == first.body  # the same event, byte for byte
            assert again.headers["x-fabric-delivery"] == first.headers["x-fabric-delivery"]

            # Only finished deliveries go out again; unknown ids are not found.
            receiver_up = False
            response = await client.post(path)
            assert response.status_code == 202

            async def third() -> list[str]:
                return [a["status"] for a in await attempts(client, hook["id"])]

            # One attempt: a failing redelivery is not retried on its own.
            assert (await eventually(third, lambda s: s[-1] != "pending"))[-1] == "failed"
            missing = f"/v1/webhooks/{hook['id']}/deliveries/00000000-0000-0000-0000-0000000000ff"
            assert_error(await client.post(f"{missing}/redeliver"), 404, "not_found")


async def test_a_delivery_still_under_way_is_not_sent_twice(
    database_url: str, tmp_path: Path
) -> None:
    settings = fast_settings(database_url, tmp_path, webhook_retry_schedule=[3600])

    async with running_app(settings) as (client, _):
        with Receiver(answer=lambda _: (500, {}, b"")) as receiver:
            hook = await create_webhook(
                client, receiver.url, events=["job.completed"], max_retries=3
            )
            await submit_job(client)

            async def retrying() -> list[dict[str, object]]:
                return [a for a in await attempts(client, hook["id"]) if a["status"] == "retrying"]

            (first,) = await eventually(retrying, bool)
            path = f"/v1/webhooks/{hook['id']}/deliveries/{first['delivery_id']}/redeliver"
            body = assert_error(await client.post(path), 409, "conflict")
            assert body["error"]["details"] == {"status": "retrying"}
