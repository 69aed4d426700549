"""Streaming overhead: a streamed answer read straight from an OpenAI-compatible upstream vs
the same answer through `POST /v1/providers/execute/stream` (with the SDK).

The upstream is a loopback server streaming `--chunks` pieces `--gap-ms` apart, so both paths
wait for the same model; the difference is what Fabric adds (authorization, credentials,
routing, relaying each frame, the usage row). Interleaved rounds; medians of time to first
text and of the whole answer, as ratios and added milliseconds.
Usage: `python bench/provider_stream.py [--requests 60]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator

import httpx
import uvicorn
from _harness import dialects, median, server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from fabric_platform import FabricClient
from fabric_server.testing import free_port


class Upstream:
    """A minimal OpenAI-compatible chat endpoint that streams a fixed answer."""

    def __init__(self, chunks: int, gap: float) -> None:
        self.chunks, self.gap = chunks, gap
        self.port = free_port()
        app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Upstream:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    async def chat(self, request: Request) -> StreamingResponse:
        await request.json()
        return StreamingResponse(self.frames(), media_type="text/event-stream")

    async def frames(self) -> AsyncIterator[bytes]:
        for index in range(self.chunks):
            await asyncio.sleep(self.gap)
            chunk = {"choices": [{"index": 0, "delta": {"content": f"word{index} "}}]}
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        usage = {"prompt_tokens": 5, "completion_tokens": self.chunks}
        yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()
        yield b"data: [DONE]\n\n"


def direct(client: httpx.Client, url: str) -> tuple[float, float]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    started = time.perf_counter()
    first = 0.0
    with client.stream("POST", f"{url}/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if not first and line.startswith("data: {") and "content" in line:
                first = time.perf_counter() - started
    return first, time.perf_counter() - started


def through_fabric(fabric: FabricClient) -> tuple[float, float]:
    started = time.perf_counter()
    first = 0.0
    with fabric.execute_provider_stream("text", {"prompt": "hi"}, model="gpt-4o-mini") as stream:
        for _ in stream:
            if not first:
                first = time.perf_counter() - started
    return first, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    args = parser.parse_args()
    print(
        f"{args.requests} streamed answers of {args.chunks} chunks, {args.gap_ms:g} ms apart\n"
        "| Database | first text direct ms | via Fabric ms | whole direct ms | via Fabric ms "
        "| first-text ratio | whole ratio |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    with Upstream(args.chunks, args.gap_ms / 1000) as upstream:
        for dialect in dialects():
            env = {
                "FABRIC_RUN_WORKERS": "false",
                "FABRIC_OPENAI_API_KEY": "sk-bench",
                "FABRIC_OPENAI_BASE_URL": upstream.base_url,
            }
            with server(dialect, **env) as base:
                raw = httpx.Client(timeout=30)
                fabric = FabricClient(base_url=base)
                direct(raw, upstream.base_url), through_fabric(fabric)  # warm up
                plain: list[tuple[float, float]] = []
                relayed: list[tuple[float, float]] = []
                for _ in range(args.requests):
                    plain.append(direct(raw, upstream.base_url))
                    relayed.append(through_fabric(fabric))
                raw.close()
                fabric.close()
            d_first, d_all = (median([s[i] for s in plain]) * 1000 for i in (0, 1))
            f_first, f_all = (median([s[i] for s in relayed]) * 1000 for i in (0, 1))
            print(
                f"| {dialect} | {d_first:.1f} | {f_first:.1f} | {d_all:.1f} | {f_all:.1f} "
                f"| {f_first / d_first:.2f} | {f_all / d_all:.2f} |"
            )


if __name__ == "__main__":
    main()
