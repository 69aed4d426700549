"""Lists at scale: what `GET /v1/jobs` costs as the jobs table grows.

The server runs on a fresh, migrated database (`_harness.server`); the table is filled by
inserting rows directly (COPY on PostgreSQL, a multi-row `executemany` on SQLite), each a copy
of one job made through the API with a new time-ordered id, one in a thousand `failed`. At each
size the script measures, against the running server (medians of interleaved rounds):

* the first page (`limit=50`);
* a page deep in the list: the cursor a client holds after paging 90 % of the way down (the
  server's own cursor encoding of the id at that depth), so no thousands of requests first;
* the first page of `status=failed` (one job in a thousand: the scan a status filter needs);
* `status=started`, which no job has (the whole list is walked to find that out);
* `GET /v1/health`, the noise floor of the machine at that moment;

then prints the ratio of the largest size to the smallest, and the database's plan for each
list query (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite).
Usage: `python bench/list_scale.py [--sizes 10000,1000000] [--sqlite-sizes 10000,200000]
[--dialect sqlite|postgresql] [--rounds 30]` (PostgreSQL when FABRIC_BENCH_DATABASE_URL or
FABRIC_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import httpx
from _harness import dialects, server
from _jobs_table import JobsTable, open_table
from _proc import fabric_server
from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql, sqlite

from fabric_server.jobs.models import Job
from fabric_server.paging import encode_cursor
from fabric_server.settings import DEFAULT_ORGANIZATION_ID

LIMIT = 50
Timings = dict[str, float]


def sample_job(client: httpx.Client) -> str:
    """Make one real job through the API and wait for it to complete; its row is the model."""
    created = client.post("/v1/jobs", json={"modality": "text", "input": {"prompt": "hi"}})
    created.raise_for_status()
    job_id: str = created.json()["data"]["id"]
    read = client.get(f"/v1/jobs/{job_id}", params={"wait": 30})
    read.raise_for_status()
    if read.json()["data"]["status"] != "completed":
        raise RuntimeError("the model job did not complete")
    return job_id


def list_query(after_id: str | None = None, status: str | None = None) -> Select[Any]:
    """The query the server runs for one page (`fabric_server.jobs.repository.page`)."""
    query = select(Job).where(Job.organization_id.in_([DEFAULT_ORGANIZATION_ID]))
    if status is not None:
        query = query.where(Job.status == status)
    if after_id is not None:
        query = query.where(Job.id < after_id)
    return query.order_by(Job.id.desc()).limit(LIMIT + 1)


def timed_get(client: httpx.Client, path: str, params: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = client.get(path, params=params)
    took = time.perf_counter() - started
    response.raise_for_status()
    return took


def measure(client: httpx.Client, table: JobsTable, size: int, rounds: int) -> Timings:
    deep_id = table.id_at(int(size * 0.9))
    requests: dict[str, tuple[str, dict[str, Any]]] = {
        "first page": ("/v1/jobs", {"limit": LIMIT}),
        "deep page": ("/v1/jobs", {"limit": LIMIT, "cursor": encode_cursor(deep_id)}),
        "failed, first page": ("/v1/jobs", {"limit": LIMIT, "status": "failed"}),
        "started, none": ("/v1/jobs", {"limit": LIMIT, "status": "started"}),
        "health": ("/v1/health", {}),
    }
    samples: dict[str, list[float]] = {name: [] for name in requests}
    for round_ in range(rounds + 3):  # three warm-up rounds
        for name, (path, params) in requests.items():
            took = timed_get(client, path, params)
            if round_ >= 3:
                samples[name].append(took)
    page = client.get("/v1/jobs", params=requests["deep page"][1]).json()["data"]
    if len(page["items"]) != LIMIT or page["items"][0]["id"] >= deep_id:
        raise RuntimeError("the deep page is not the page after the cursor")
    plans = {
        "first page": list_query(),
        "deep page": list_query(after_id=deep_id),
        "failed, first page": list_query(status="failed"),
        "started, none": list_query(status="started"),
    }
    for name, query in plans.items():
        plan = table.explain(compile_sql(query, table.dialect))
        print(f"    plan, {name}: " + "\n      ".join(plan))
    return {name: statistics.median(values) * 1000 for name, values in samples.items()}


def compile_sql(query: Select[Any], dialect: str) -> str:
    module = postgresql if dialect == "postgresql" else sqlite
    engine_dialect = module.dialect()
    return str(query.compile(dialect=engine_dialect, compile_kwargs={"literal_binds": True}))


def run(dialect: str, sizes: list[int], rounds: int) -> None:
    with server(dialect) as base, httpx.Client(base_url=base, timeout=120) as client:
        _, url = fabric_server()
        table = open_table(url)
        model = table.model_row(sample_job(client))
        results: dict[int, Timings] = {}
        count = 1
        for size in sizes:
            started = time.perf_counter()
            table.fill(model, start=count, count=size - count)
            filled = time.perf_counter() - started
            count = size
            print(f"  {dialect}: {size:,} jobs (filled in {filled:.1f} s)", flush=True)
            results[size] = measure(client, table, size, rounds)
        table.close()
    report(dialect, results)


def report(dialect: str, results: dict[int, Timings]) -> None:
    small, large = min(results), max(results)
    names = list(results[small])
    print(f"  {dialect}: median ms per request")
    print(f"    {'jobs':>10} " + " ".join(f"{name:>18}" for name in names))
    for size, timings in results.items():
        print(f"    {size:>10,} " + " ".join(f"{timings[name]:18.2f}" for name in names))
    ratios = " ".join(f"{results[large][n] / results[small][n]:17.2f}x" for n in names)
    print(f"    {'ratio':>10} {ratios}   ({large:,} ÷ {small:,})")


def sizes_of(text: str) -> list[int]:
    sizes = sorted(int(part) for part in text.split(","))
    if sizes[0] < 100:
        raise SystemExit("sizes start at 100 jobs")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,1000000", help="PostgreSQL table sizes")
    parser.add_argument("--sqlite-sizes", default="10000,200000")
    parser.add_argument("--dialect", choices=("sqlite", "postgresql"))
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    for dialect in [args.dialect] if args.dialect else dialects():
        sizes = sizes_of(args.sizes if dialect == "postgresql" else args.sqlite_sizes)
        run(dialect, sizes, args.rounds)


if __name__ == "__main__":
    main()
