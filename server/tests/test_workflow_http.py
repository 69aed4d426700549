"""`http.request` against a small local HTTP server, and its guard against private targets."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from workflow_helpers import app_client, node, run_log, run_workflow

from fabric_server.testing import fast_settings
from fabric_server.workflows.nodes.base import NodeError
from fabric_server.workflows.nodes.http import HttpRequest, is_forbidden_address

BIG_BODY = b"x" * 4096


class TargetServer:
    """A real HTTP server on a free loopback port; counts the requests per path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.last_request: dict[str, Any] = {}
        target = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._route()

            def do_POST(self) -> None:
                self._route()

            def _route(self) -> None:
                path = self.path.split("?")[0]
                target.hits[path] += 1
                length = int(self.headers.get("content-length") or 0)
                target.last_request = {
                    "method": self.command,
                    "path": self.path,
                    "host": self.headers.get("host"),
                    "content_type": self.headers.get("content-type"),
                    "x_team": self.headers.get("x-team"),
                    "body": self.rfile.read(length).decode(),
                }
                if path == "/json":
                    self._send(200, json.dumps({"hello": "world"}).encode(), "application/json")
                elif path == "/echo":
                    self._send(201, json.dumps(target.last_request).encode(), "application/json")
                elif path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/json")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/flaky":
                    ok = target.hits[path] > 2
                    self._send(200 if ok else 503, b"finally" if ok else b"busy", "text/plain")
                elif path == "/broken":
                    self._send(500, b"boom", "text/plain")
                elif path == "/big":
                    self._send(200, BIG_BODY, "text/plain")
                else:
                    self._send(404, b"no such page", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> TargetServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target() -> Iterator[TargetServer]:
    with TargetServer() as server:
        yield server


def request_node(key: str, **config: Any) -> dict[str, Any]:
    return {"key": key, "operation": "http.request", "config": config}


async def test_get_post_and_redirects(client: httpx.AsyncClient, target: TargetServer) -> None:
    nodes = [
        request_node("get", url=f"{target.url}/json"),
        request_node(
            "post",
            url="{{context.base}}/echo",
            method="post",
            headers={"X-Team": "{{context.team}}"},
            json={"n": 1},
        ),
        request_node("moved", url=f"{target.url}/redirect"),
    ]
    run = await run_workflow(client, nodes, {"base": target.url, "team": "blue"})
    assert run["status"] == "completed", run
    got = node(run, "get")["output"]
    assert got["status"] == 200
    assert got["json"] == {"hello": "world"}
    assert got["headers"]["content-type"] == "application/json"
    assert got["url"] == f"{target.url}/json"
    posted = node(run, "post")["output"]
    assert posted["status"] == 201
    assert posted["json"]["method"] == "POST"
    assert posted["json"]["x_team"] == "blue"
    assert posted["json"]["content_type"] == "application/json"
    assert json.loads(posted["json"]["body"]) == {"n": 1}
    assert posted["json"]["host"] == target.url.removeprefix("http://")
    moved = node(run, "moved")["output"]
    assert (moved["status"], moved["json"], moved["url"]) == (
        200,
        {"hello": "world"},
        f"{target.url}/json",
    )


async def test_json_is_templated_like_the_other_fields(
    client: httpx.AsyncClient, target: TargetServer
) -> None:
    nodes = [
        {"key": "draft", "operation": "ai.generate",
         "config": {"prompt_template": "Summary of {{context.ticket.title}}"}},
        {"key": "notify", "operation": "http.request", "depends_on": ["draft"],
         "inputs": {"who": "$context.ticket.owner"},
         "config": {
             "url": f"{target.url}/echo", "method": "POST",
             "json": {
                 "text": "{{inputs.who}}: {{nodes.draft.content}}",
                 "ticket": "{{context.ticket}}",
                 "priority": "{{context.ticket.priority}}",
                 "labels": ["triage", "p{{context.ticket.priority}}"],
                 "provider": "{{nodes.draft.provider_id}}",
                 "raw": 1.5,
             },
         }},
    ]  # fmt: skip
    ticket = {"title": "Printer on fire", "owner": "ada", "priority": 1}
    run = await run_workflow(client, nodes, {"ticket": ticket})
    assert run["status"] == "completed", run
    sent = json.loads(target.last_request["body"])
    assert sent == {
        "text": "ada: Summary of Printer on fire",
        "ticket": ticket,  # one placeholder alone keeps the value's type
        "priority": 1,
        "labels": ["triage", "p1"],
        "provider": "echo",
        "raw": 1.5,
    }


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"url": "{{context.base}}/echo"}, "config.url"),
        ({"headers": {"X-Team": "{{context.team}}"}}, "config.headers.X-Team"),
        ({"method": "POST", "body": "team={{context.team}}"}, "config.body"),
        ({"method": "POST", "json": {"to": ["{{context.team}}"]}}, "config.json.to.0"),
    ],
)
async def test_a_reference_with_no_value_fails_before_anything_is_sent(
    client: httpx.AsyncClient, target: TargetServer, config: dict[str, Any], where: str
) -> None:
    config = {"url": f"{target.url}/echo", **config}
    run = await run_workflow(client, [request_node("call", **config)], {"unrelated": 1})
    assert run["status"] == "failed"
    call = node(run, "call")
    assert call["attempts"] == 1  # not retried: the context will not change
    missing = "base" if where == "config.url" else "team"
    assert call["error"] == f"{where}: template variable `context.{missing}` has no value"
    assert target.hits == {}


async def test_server_errors_are_retried_until_they_pass(
    client: httpx.AsyncClient, target: TargetServer
) -> None:
    nodes = [{**request_node("flaky", url=f"{target.url}/flaky"), "policy": {"max_retries": 3}}]
    run = await run_workflow(client, nodes)
    assert run["status"] == "completed", run
    flaky = node(run, "flaky")
    assert flaky["attempts"] == 3
    assert flaky["output"]["body"] == "finally"
    kinds = [e["kind"] for e in (await run_log(client, run["id"]))["events"]]
    assert kinds.count("workflow.node.retrying") == 2
    assert target.hits["/flaky"] == 3


async def test_exhausted_retries_fail_the_run_and_skip_dependants(
    client: httpx.AsyncClient, target: TargetServer
) -> None:
    nodes = [
        request_node("call", url=f"{target.url}/broken"),
        {"key": "use", "operation": "workflow.noop", "depends_on": ["call"]},
    ]
    run = await run_workflow(client, nodes, defaults={"max_retries": 1})
    assert run["status"] == "failed"
    assert node(run, "call")["attempts"] == 2
    assert node(run, "call")["error"] == f"GET {target.url}/broken answered 500"
    assert node(run, "use")["status"] == "skipped"
    assert target.hits["/broken"] == 2


async def test_client_errors_fail_at_once_unless_allowed(
    client: httpx.AsyncClient, target: TargetServer
) -> None:
    strict = await run_workflow(client, [request_node("get", url=f"{target.url}/missing")])
    assert strict["status"] == "failed"
    assert node(strict, "get")["attempts"] == 1
    lenient = await run_workflow(
        client, [request_node("get", url=f"{target.url}/missing", raise_for_status=False)]
    )
    assert lenient["status"] == "completed"
    assert node(lenient, "get")["output"]["status"] == 404
    assert node(lenient, "get")["output"]["body"] == "no such page"
    assert node(lenient, "get")["output"]["json"] is None


async def test_response_size_is_limited(
    database_url: str, tmp_path: Path, target: TargetServer
) -> None:
    settings = fast_settings(database_url, tmp_path, http_max_response_bytes=1024)
    async with app_client(settings) as (client, _):
        run = await run_workflow(client, [request_node("big", url=f"{target.url}/big")])
    assert run["status"] == "failed"
    assert "larger than the 1024-byte limit" in node(run, "big")["error"]


async def test_private_targets_are_refused_unless_allowed(
    database_url: str, tmp_path: Path, target: TargetServer
) -> None:
    settings = fast_settings(database_url, tmp_path, http_allow_private=False)
    port = target.url.rsplit(":", 1)[1]
    urls = {
        "loopback": f"{target.url}/json",
        "by_name": f"http://localhost:{port}/json",
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "private": "http://10.1.2.3/",
        "ipv6": f"http://[::1]:{port}/json",
    }
    async with app_client(settings) as (client, _):
        for key, url in urls.items():
            run = await run_workflow(client, [request_node(key, url=url)])
            assert run["status"] == "failed", run
            assert "refused" in node(run, key)["error"]
            assert node(run, key)["attempts"] == 1
    assert target.hits == {}


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("127.0.0.1", True),
        ("10.0.0.8", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("fe80::1%eth0", True),
        ("fd00::1", True),
        ("::ffff:127.0.0.1", True),
        ("224.0.0.1", True),
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_address_classification(address: str, forbidden: bool) -> None:
    assert is_forbidden_address(address) is forbidden


async def test_every_redirect_hop_is_checked() -> None:
    guard = HttpRequest(allow_private=False, max_response_bytes=1024)
    with pytest.raises(NodeError, match="refused localhost"):
        await guard._pin(httpx.URL("http://localhost/next"))
