"""Benchmark listing runs at a million runs.

    .venv/bin/python bench/list_runs.py [--runs 1000000] [--db sqlite,postgresql] [--repeat 40]

One account holds `--runs` runs (10 workflows, 10 devices, statuses mixed as a fleet makes them,
created over the last 90 days), written straight into a fresh database (SQLite file;
PostgreSQL at PHONEFLOW_TEST_DATABASE_URL, a schema dropped afterwards), then ANALYZEd as
autovacuum would. A real uvicorn server process answers `GET /api/v1/runs` over HTTP:
for every filter the first page (50 runs) `--repeat` times, and 20 pages followed through
`nextCursor`; also `GET /api/v1/stats?days=7`. Latency is client-side (request to parsed answer).

Target (the server issue: "fast at a million runs"): a page of runs in p99 < 50 ms, whatever
the filter, sort or search; the Analytics page's stats over 7, 30 and 90 days are listed too
(the runs are written straight into the database, so the fill also writes the daily rollup and
the failed steps the server keeps as runs end). Prints a table and writes
`bench/results/list_runs.json`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from ingest import DEFINITION, REPO, database, percentile, seed, server, write_direct
from machine_info import machine_info
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from server.db import make_engine, make_session_factory, utcnow
from server.devices import service as devices_service
from server.runs.models import RunInputValue, RunStepFailure, input_values
from server.runs.rollup import count_ended
from server.workflows import service as workflows_service

RESULTS = REPO / "bench" / "results" / "list_runs.json"
TARGET_P99_MS = 50.0
PAGE = 50
CURSOR_PAGES = 20
INSERT_CHUNK = 20_000
# A fleet's mix: mostly success, some failures and timeouts, a few cancelled and still running.
FAILING_NODES = ["pay", "login", "search", "open", "save"]
STATUSES = [("success", 5, 80), ("failed", 5, 10), ("timeout", 5, 3), ("cancelled", 5, 2), ("running", 1, 5)]


def add_fleet(url: str, ids: dict[str, str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Nine more workflows and devices beside the seeded ones: (workflow id, version id) pairs, device ids."""
    engine = make_engine(url)
    workflows = [(ids["workflow_id"], ids["version_id"])]
    devices = [ids["device_id"]]
    with make_session_factory(engine).begin() as session:
        for n in range(2, 11):
            workflow, version = workflows_service.create_workflow(
                session, ids["account_id"], f"wf {n}", DEFINITION
            )
            workflow.published_version_id = version.id
            workflows.append((workflow.id, version.id))
            facts = devices_service.DeviceFacts(
                serial=f"BENCH{n}", model="Pixel", android_version="14", name=None
            )
            device, _ = devices_service.create_device(session, ids["account_id"], facts)
            devices.append(device.id)
    engine.dispose()
    return workflows, devices


def fill(
    url: str, account_id: str, workflows: list[tuple[str, str]], devices: list[str], runs: int
) -> tuple[float, str]:
    """`runs` runs written straight into the database: seconds it took (ANALYZE included), and the id
    of one run in the middle (to search for). One in 200 was triggered through the API, one in 100
    has the input value `vip-…`."""
    rng = random.Random(7)
    names = [name for name, _, _ in STATUSES]
    weights = [weight for _, _, weight in STATUSES]
    ranks = {name: rank for name, rank, _ in STATUSES}
    now = utcnow()
    span_s = 90 * 86400
    engine = make_engine(url)
    started = time.perf_counter()
    for start in range(0, runs, INSERT_CHUNK):
        rows: list[dict[str, Any]] = []
        for index in range(start, min(runs, start + INSERT_CHUNK)):
            created = now - timedelta(seconds=span_s * (1 - index / runs), microseconds=rng.randrange(1000))
            status = rng.choices(names, weights)[0]
            workflow_id, version_id = rng.choice(workflows)
            ended = status != "running"
            rows.append(
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "account_id": account_id,
                    "workflow_id": workflow_id,
                    "workflow_version_id": version_id,
                    "device_id": rng.choice(devices),
                    "status": status,
                    "status_rank": ranks[status],
                    "trigger": "api" if index % 200 == 7 else "device",
                    "inputs": {"order": f"{'vip' if index % 100 == 3 else 'std'}-{index}", "qty": index % 9},
                    "started_at": created,
                    "ended_at": created + timedelta(seconds=6) if ended else None,
                    "duration_ms": 6000 if ended else None,
                    "error_message": "no element with text 'Pay' on screen" if status == "failed" else None,
                    "n_steps": 12 if ended else None,
                    "n_failed": 1 if status == "failed" else 0,
                    "n_retries": 0,
                    "trace_len": 12,
                    "created_at": created,
                    "updated_at": created,
                }
            )
        with engine.begin() as conn:
            write_direct(conn, rows, [])
            conn.execute(
                insert(RunInputValue),
                [
                    {"run_id": row["id"], "value": value, "account_id": account_id}
                    for row in rows
                    for value in input_values(row["inputs"])
                ],
            )
            # What the server keeps for the analytics as runs end: the daily rollup, the failed steps.
            ended = [SimpleNamespace(**row) for row in rows if row["status"] != "running"]
            count_ended(Session(bind=conn), account_id, ended)  # type: ignore[arg-type]
            failures = [
                {
                    "run_id": row["id"],
                    "seq": 12,
                    "account_id": account_id,
                    "workflow_id": row["workflow_id"],
                    "node_id": FAILING_NODES[index % len(FAILING_NODES)],
                    "kind": "action.tapByText",
                    "message": row["error_message"],
                    "at": row["created_at"],
                }
                for index, row in enumerate(rows)
                if row["status"] == "failed"
            ]
            if failures:
                conn.execute(insert(RunStepFailure), failures)
        done = min(runs, start + INSERT_CHUNK)
        print(f"\r  {done:,} / {runs:,} runs written", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        middle = conn.execute(
            text("SELECT id FROM runs WHERE account_id = :a ORDER BY created_at LIMIT 1 OFFSET :n"),
            {"a": account_id, "n": runs // 2},
        ).scalar_one()
    engine.dispose()
    return time.perf_counter() - started, str(middle)


def timed_get(http: httpx.Client, path: str, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = http.get(path, params=params)
    body: dict[str, Any] = response.json()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} {params} answered {response.status_code}: {body}")
    return elapsed, body


def summary(label: str, samples: list[float], rows: int) -> dict[str, Any]:
    return {
        "query": label,
        "requests": len(samples),
        "runs_per_page": rows,
        "p50_ms": round(percentile(samples, 0.5), 2),
        "p99_ms": round(percentile(samples, 0.99), 2),
        "max_ms": round(max(samples), 2),
    }


def measure(
    base: str, token: str, workflows: list[tuple[str, str]], devices: list[str], repeat: int, search_id: str
) -> list[dict[str, Any]]:
    now = utcnow()
    week = {"from": (now - timedelta(days=37)).isoformat(), "to": (now - timedelta(days=30)).isoformat()}
    cases: list[tuple[str, dict[str, Any]]] = [
        ("all, newest first", {}),
        ("status=failed", {"status": "failed"}),
        ("status=running (5%)", {"status": "running"}),
        ("workflowId", {"workflowId": workflows[3][0]}),
        ("deviceId", {"deviceId": devices[5]}),
        ("a week a month ago", week),
        ("status=timeout + workflowId", {"status": "timeout", "workflowId": workflows[7][0]}),
        ("sort=-startedAt (the dashboard's)", {"sort": "-startedAt"}),
        ("sort=-startedAt + status=failed", {"sort": "-startedAt", "status": "failed"}),
        ("sort=-startedAt, a week a month ago", {"sort": "-startedAt", **week}),
        ("sort=-durationMs", {"sort": "-durationMs"}),
        ("trigger=api (0.5%)", {"trigger": "api"}),
        ("q=an input value (1%)", {"q": "vip"}),
        ("q=the start of a run id", {"q": search_id[:8]}),
    ]
    rows: list[dict[str, Any]] = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        timed_get(http, "/api/v1/runs", {})  # warm the connection and the server
        for label, params in cases:
            samples, count = [], 0
            for _ in range(repeat):
                elapsed, body = timed_get(http, "/api/v1/runs", {**params, "limit": PAGE})
                samples.append(elapsed)
                count = len(body["runs"])
            rows.append(summary(f"{label}: first page", samples, count))
            samples, cursor = [], None
            for _ in range(CURSOR_PAGES):
                page_params = {**params, "limit": PAGE, **({"cursor": cursor} if cursor else {})}
                elapsed, body = timed_get(http, "/api/v1/runs", page_params)
                samples.append(elapsed)
                cursor = body.get("nextCursor")
                if cursor is None:
                    break
            rows.append(summary(f"{label}: next {len(samples)} pages", samples, PAGE))
        for days in (7, 30, 90):
            samples = [
                timed_get(http, "/api/v1/stats", {"days": days})[0] for _ in range(max(3, repeat // 4))
            ]
            rows.append(summary(f"stats (Analytics), last {days} days", samples, 0))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=40, help="first-page requests per filter")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "when": utcnow().isoformat(),
        "machine": machine_info(),
        "settings": vars(args),
        "target_p99_ms": TARGET_P99_MS,
        "databases": {},
    }
    for kind in args.db.split(","):
        print(f"{kind}: filling", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
            ids = seed(url)
            workflows, devices = add_fleet(url, ids)
            fill_s, search_id = fill(url, ids["account_id"], workflows, devices, args.runs)
            with server(url, 1) as base:
                rows = measure(base, ids["account_token"], workflows, devices, args.repeat, search_id)
            results["databases"][kind] = {"runs": args.runs, "fill_s": round(fill_s, 1), "queries": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)


def print_table(results: dict[str, Any]) -> None:
    for kind, entry in results["databases"].items():
        print(f"\n{kind}: {entry['runs']:,} runs (written and analysed in {entry['fill_s']} s)")
        print(f"{'query':<48} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  target")
        for row in entry["queries"]:
            verdict = ""
            if row["runs_per_page"]:
                verdict = "PASS" if row["p99_ms"] < TARGET_P99_MS else "FAIL"
            print(
                f"{row['query']:<48} {row['requests']:>8} {row['p50_ms']:>8} {row['p99_ms']:>8} "
                f"{row['max_ms']:>8}  {verdict}"
            )
    print(f"\ntarget: a page of runs in p99 < {TARGET_P99_MS:g} ms; written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
