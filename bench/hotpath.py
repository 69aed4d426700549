"""Where the time goes: SQL statements, transactions and server CPU per job and per node.

The server runs inside this process (uvicorn on a free port) with counters on its database
engines; the load comes from a client in a separate process, so the CPU time measured here is
the server's alone. Each phase starts a fresh client and reports, per operation:

* statements (by verb), transactions (and how many of them wrote), commits;
* server CPU milliseconds (process CPU time: API, workers, event hub, drivers' threads);
* throughput and latency as the client saw them.

Phases: jobs one at a time, jobs from 16 concurrent submitters, and runs of a 10-node linear
`workflow.noop` workflow (per node transition). Usage:
`python bench/hotpath.py [--jobs 200] [--runs 20] [--wait stream|poll|long]`
(PostgreSQL too when FABRIC_BENCH_DATABASE_URL or FABRIC_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from _harness import PG_URL, dialects
from sqlalchemy import event
from sqlalchemy.engine import Engine

from fabric_server.app import create_app
from fabric_server.preflight import bind_socket
from fabric_server.services import build_services
from fabric_server.settings import Settings
from fabric_server.testing import TestDatabases

CLIENT = Path(__file__).with_name("_hotpath_client.py")


@dataclass
class SqlCounter:
    """Counts what reaches the database driver, by statement verb and by transaction kind."""

    statements: Counter[str] = field(default_factory=Counter)
    transactions: Counter[str] = field(default_factory=Counter)

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._on_statement)
        event.listen(engine, "begin", self._on_begin)
        event.listen(engine, "commit", self._on_commit)

    def reset(self) -> None:
        self.statements.clear()
        self.transactions.clear()

    def _on_statement(self, conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
        if verb == "SELECT" and ("pg_notify" in sql or "pg_advisory" in sql):
            verb = "SELECT (lock/notify)"
        self.statements[verb] += 1

    def _on_begin(self, conn: Any) -> None:
        write = conn.get_execution_options().get("fabric_write", False)
        self.transactions["write" if write else "read"] += 1

    def _on_commit(self, conn: Any) -> None:
        self.transactions["commit"] += 1


def settings_for(url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=url,
        data_dir=data_dir,
        env="development",
        log_level="warning",
    )


async def run_client(base: str, phase: str, args: argparse.Namespace) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLIENT),
        base,
        phase,
        str(args.jobs),
        str(args.runs),
        args.wait,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"client phase {phase} failed")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def report(phase: str, result: dict[str, Any], counter: SqlCounter, cpu: float) -> None:
    units = result["units"]
    unit = result["unit"]
    stmts = sum(counter.statements.values())
    tx = counter.transactions
    verbs = ", ".join(f"{v} {n / units:.1f}" for v, n in counter.statements.most_common())
    print(
        f"  {phase:<18} {result['rate']:7.1f} {unit}s/s | p50 {result['p50_ms']:6.1f} ms"
        f" p99 {result['p99_ms']:6.1f} ms | per {unit}: {stmts / units:5.1f} statements,"
        f" {(tx['read'] + tx['write']) / units:4.1f} transactions ({tx['write'] / units:.1f}"
        f" writing), server CPU {cpu * 1000 / units:5.2f} ms"
    )
    print(f"  {'':<18} statements by verb: {verbs}")


async def bench(url: str, data_dir: Path, args: argparse.Namespace) -> None:
    services = build_services(settings_for(url, data_dir))
    counter = SqlCounter()
    counter.attach(services.db.engine.sync_engine)
    if services.db.is_sqlite:
        counter.attach(services.db.sync_engine())  # the group-commit writer and hot reads
    app = create_app(services=services)
    # Listening before the server starts: the client's first connection simply waits in the
    # backlog until the server is up.
    listening = bind_socket("127.0.0.1", 0, host_label="host", port_label="port")
    listening.listen(2048)
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    base = f"http://127.0.0.1:{port}"
    await run_client(base, "warmup", args)
    for phase in args.phases.split(","):
        counter.reset()
        cpu = time.process_time()
        result = await run_client(base, phase, args)
        report(phase, result, counter, time.process_time() - cpu)
    server.should_exit = True
    await serving


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--wait", choices=("stream", "poll", "long"), default="stream")
    parser.add_argument("--dialect", choices=("sqlite", "postgresql"), default=None)
    parser.add_argument("--phases", default="jobs-sequential,jobs-concurrent,workflow-linear10")
    args = parser.parse_args()
    for dialect in [args.dialect] if args.dialect else dialects():
        with tempfile.TemporaryDirectory(prefix="fabric-hotpath-") as tmp:
            dbs = TestDatabases(Path(tmp), PG_URL)
            url = dbs.create(dialect)
            print(f"{dialect} (wait: {args.wait})")
            try:
                uvloop.run(bench(url, Path(tmp), args))  # the loop `fabric-server serve` uses
            finally:
                dbs.drop(url)
                dbs.close()


if __name__ == "__main__":
    main()
