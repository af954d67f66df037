"""Benchmark run ingestion and run.updated delivery.

    .venv/bin/python bench/ingest.py [--runs 2000] [--single-runs 400] [--db sqlite,postgresql]
                                     [--subscribers 100,1000] [--events 30] [--repeat 1]
                                     [--sqlite-workers 1] [--pg-workers 4]

1. `runs.report` throughput: runs with 50 trace events each, sent by 8 concurrent clients in
   batches of 1 and of 50 to a real uvicorn server process, against the same rows written
   straight into the same database (SQLAlchemy Core bulk inserts, 8 threads, batches of 50)
   in the same run. On SQLite (a file) and PostgreSQL (PHONEFLOW_TEST_DATABASE_URL or
   postgresql://postgres@127.0.0.1:5432/test, a fresh schema dropped afterwards).
2. `run.updated` latency: N SSE subscribers of one account (in subscriber processes of 500
   connections each) connected to the server; reports are sent from this process, and the
   time from a report's answer to each subscriber's receipt of its event is measured (p50,
   p99 over all subscribers and reports). A negative value means the event arrived before
   the answer did (the commit precedes both).

The machine may be shared, so besides wall-clock runs/s (best and median of `--repeat` rounds) each
runs.report row gives the CPU the server's processes and their PostgreSQL backends spent per run
(from /proc; the backends are told apart by the server's application_name).

Targets: >= 500 single-run reports/s and runs.report / direct >= 0.75 with batches of 50 on
PostgreSQL with 4 processes; p99 < 100 ms at 1,000 subscribers.
Prints a table and writes `bench/results/ingest.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import serving
from machine_info import machine_info
from serving import PG_URL, cpu_s, database, process_tree
from sqlalchemy import text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from server.accounts import service as accounts_service  # noqa: E402
from server.accounts.models import Plan  # noqa: E402
from server.db import make_engine, make_session_factory, utcnow  # noqa: E402
from server.devices import service as devices_service  # noqa: E402
from server.workflows import service as workflows_service  # noqa: E402

RESULTS = REPO / "bench" / "results" / "ingest.json"
CLIENTS = 8
EVENTS_PER_RUN = 50
DEFINITION = {
    "schemaVersion": 1,
    "name": "bench",
    "targetPackages": ["com.example.shop"],
    "start": "open",
    "nodes": [{"id": "open", "kind": "action.launchApp", "params": {"package": "com.example.shop"}}],
}
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def trace(n: int) -> list[dict[str, Any]]:
    return [
        {
            "seq": seq,
            "nodeId": f"step{seq}",
            "kind": "action.tapByText",
            "outcome": "ok",
            "message": None,
            "startedAt": iso(T0 + timedelta(milliseconds=100 * seq)),
            "durationMs": 84,
            "attempts": 1,
            "output": {},
        }
        for seq in range(1, n + 1)
    ]


def report(workflow_id: str, version_id: str, steps: int = EVENTS_PER_RUN) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "workflowId": workflow_id,
        "workflowVersionId": version_id,
        "status": "success",
        "trigger": "device",
        "inputs": {},
        "startedAt": iso(T0),
        "endedAt": iso(T0 + timedelta(seconds=6)),
        "durationMs": 6000,
        "trace": trace(steps),
        "nSteps": steps,
        "nFailed": 0,
        "nRetries": 0,
    }


# --- databases and servers (bench/serving.py) ------------------------------------------------


def seed(url: str) -> dict[str, str]:
    """An account, a device and a workflow; their ids and tokens."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        account, account_token = accounts_service.create_account(
            session, f"bench-{uuid.uuid4().hex[:8]}@example.com", Plan.TEAM
        )
        facts = devices_service.DeviceFacts(serial="BENCH1", model="Pixel", android_version="14", name=None)
        device, device_token = devices_service.create_device(session, account.id, facts)
        workflow, version = workflows_service.create_workflow(session, account.id, "bench", DEFINITION)
        workflow.published_version_id = version.id
        ids = {
            "account_id": account.id,
            "account_token": account_token,
            "device_id": device.id,
            "device_token": device_token,
            "workflow_id": workflow.id,
            "version_id": version.id,
        }
    engine.dispose()
    return ids


SERVER_PIDS: dict[str, int] = {}  # base URL -> the server's main process


def _backend_pids(url: str) -> list[int]:
    """The PostgreSQL backends serving the benchmark's server (its application_name)."""
    if not url.startswith("postgresql"):
        return []
    admin = make_engine(PG_URL, pool_pre_ping=False)
    try:
        with admin.connect() as conn:
            return list(
                conn.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                    {"name": APPLICATION_NAME},
                ).scalars()
            )
    finally:
        admin.dispose()


class CpuMeter:
    """CPU seconds spent by the server's processes and its PostgreSQL backends between start and stop."""

    def __init__(self, base: str, url: str) -> None:
        self.base, self.url = base, url

    def __enter__(self) -> CpuMeter:
        self.server0 = {pid: cpu_s(pid) for pid in process_tree(SERVER_PIDS[self.base])}
        self.db0 = {pid: cpu_s(pid) for pid in _backend_pids(self.url)}
        return self

    def __exit__(self, *_: object) -> None:
        server = {pid: cpu_s(pid) for pid in process_tree(SERVER_PIDS[self.base])}
        db = {pid: cpu_s(pid) for pid in _backend_pids(self.url)}
        self.server_s = sum(cpu - self.server0.get(pid, 0.0) for pid, cpu in server.items())
        self.db_s = sum(cpu - self.db0.get(pid, 0.0) for pid, cpu in db.items())


APPLICATION_NAME = f"phoneflow-bench-{os.getpid()}"


@contextmanager
def server(url: str, workers: int) -> Iterator[str]:
    """`phoneflow serve --workers N` on `url` (serving.server), its database backends named."""
    env = {
        # Named, so that the CPU of its PostgreSQL backends can be told from other clients'.
        "PHONEFLOW_DATABASE_URL": f"{url}&application_name={APPLICATION_NAME}" if "?" in url else url,
        "PHONEFLOW_MAX_BODY_BYTES": str(4 * 1024 * 1024),
    }
    with serving.server(url, workers, env=env, start_s=60) as (base, pid):
        SERVER_PIDS[base] = pid
        yield base


# --- throughput ----------------------------------------------------------------------------


def http_throughput(base: str, url: str, ids: dict[str, str], runs: int, batch: int) -> dict[str, Any]:
    """runs/s of runs.report with `CLIENTS` concurrent clients sending batches of `batch`, and the CPU
    the server's processes and their database backends spent per run."""
    bodies = []
    for start in range(0, runs, batch):
        chunk = [report(ids["workflow_id"], ids["version_id"]) for _ in range(min(batch, runs - start))]
        bodies.append(json.dumps({"runs": chunk}).encode())
    headers = {"Authorization": f"Bearer {ids['device_token']}", "Content-Type": "application/json"}
    queue = list(reversed(bodies))
    lock = threading.Lock()
    errors: list[str] = []

    address = urlsplit(base)

    def client() -> None:
        # A kept http.client connection, as the device bridge sends its reports: ~0.1 ms of CPU a
        # request where httpx spent ~1 ms, on the two cores the server is measured on.
        http = HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=120)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                http.request("POST", "/api/v1/runs.report", body=body, headers=headers)
                response = http.getresponse()
                text = response.read().decode("utf-8", "replace")
                if response.status != 200 or '"rejected"' in text:
                    errors.append(text[:300])
        finally:
            http.close()

    with CpuMeter(base, url) as cpu:
        started = time.perf_counter()
        client_started = os.times()
        with ThreadPoolExecutor(CLIENTS) as pool:
            for future in [pool.submit(client) for _ in range(CLIENTS)]:
                future.result()
        elapsed = time.perf_counter() - started
        client_ended = os.times()
    client_s = client_ended.user - client_started.user + client_ended.system - client_started.system
    if errors:
        raise RuntimeError(f"{len(errors)} failed reports; first: {errors[0]}")
    return {
        "runs": runs,
        "batch": batch,
        "seconds": round(elapsed, 3),
        "runs_per_s": round(runs / elapsed, 1),
        "server_cpu_ms_per_run": round(1000 * cpu.server_s / runs, 3),
        "db_cpu_ms_per_run": round(1000 * cpu.db_s / runs, 3),
        "client_cpu_ms_per_run": round(1000 * client_s / runs, 3),
    }


def write_direct(conn: Any, run_rows: list[dict[str, Any]], event_rows: list[dict[str, Any]]) -> None:
    """The rows by the driver's fastest plain path: COPY on PostgreSQL, executemany on SQLite."""
    driver = conn.connection.driver_connection
    sqlite = conn.dialect.name == "sqlite"

    def value(raw: Any) -> Any:
        if isinstance(raw, dict):
            return json.dumps(raw)
        if sqlite and isinstance(raw, datetime):  # SQLAlchemy's SQLite format: naive UTC text
            return raw.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return raw

    # The columns the rows give; the database's own defaults fill the rest (as they would for the server).
    columns = list(run_rows[0])
    runs = [[value(row[column]) for column in columns] for row in run_rows]
    events = [(row["run_id"], row["seq"], json.dumps(row["event"])) for row in event_rows]
    if not sqlite:
        with driver.cursor().copy(f"COPY runs ({', '.join(columns)}) FROM STDIN") as copy:
            for run in runs:
                copy.write_row(run)
        with driver.cursor().copy("COPY trace_events (run_id, seq, event) FROM STDIN") as copy:
            for event in events:
                copy.write_row(event)
        return
    marks = ", ".join("?" for _ in columns)
    driver.executemany(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({marks})", runs)
    driver.executemany("INSERT INTO trace_events (run_id, seq, event) VALUES (?, ?, ?)", events)


def direct_throughput(url: str, ids: dict[str, str], runs: int, batch: int = 50) -> dict[str, Any]:
    """runs/s of the same rows written straight into the database by the driver (no HTTP, no checks,
    no events): the floor of what storing them costs."""
    engine = make_engine(url)
    now = utcnow()
    batches = []
    for start in range(0, runs, batch):
        run_rows: list[dict[str, Any]] = []
        event_rows: list[dict[str, Any]] = []
        for _ in range(min(batch, runs - start)):
            body = report(ids["workflow_id"], ids["version_id"])
            run_rows.append(
                {
                    "id": body["id"],
                    "account_id": ids["account_id"],
                    "workflow_id": ids["workflow_id"],
                    "workflow_version_id": ids["version_id"],
                    "device_id": ids["device_id"],
                    "status": "success",
                    "status_rank": 2,
                    "trigger": "device",
                    "inputs": {},
                    "started_at": T0,
                    "ended_at": T0 + timedelta(seconds=6),
                    "duration_ms": 6000,
                    "n_steps": EVENTS_PER_RUN,
                    "n_failed": 0,
                    "n_retries": 0,
                    "trace_len": EVENTS_PER_RUN,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            event_rows.extend({"run_id": body["id"], "seq": e["seq"], "event": e} for e in body["trace"])
        batches.append((run_rows, event_rows))
    queue = list(reversed(batches))
    lock = threading.Lock()

    def writer() -> None:
        while True:
            with lock:
                if not queue:
                    return
                run_rows, event_rows = queue.pop()
            with engine.begin() as conn:
                write_direct(conn, run_rows, event_rows)

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(writer) for _ in range(CLIENTS)]:
            future.result()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return {
        "runs": runs,
        "batch": batch,
        "seconds": round(elapsed, 3),
        "runs_per_s": round(runs / elapsed, 1),
    }


# --- SSE latency ---------------------------------------------------------------------------


class Subscriber:
    """A minimal SSE client on a raw asyncio connection (1,000 of them fit in one loop)."""

    def __init__(self, received: dict[str, list[float]]) -> None:
        self.received = received
        self.ready = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None

    async def run(self, host: str, port: int, token: str) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        self.writer = writer
        writer.write(
            f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass  # status line and headers
        buffer = b""
        while True:
            size_line = await reader.readline()  # chunked transfer encoding
            if not size_line:
                return
            size = int(size_line.strip() or b"0", 16)
            chunk = await reader.readexactly(size + 2)
            buffer += chunk[:-2]
            while b"\r\n\r\n" in buffer or b"\n\n" in buffer:
                sep = b"\r\n\r\n" if b"\r\n\r\n" in buffer else b"\n\n"
                message, buffer = buffer.split(sep, 1)
                now = time.perf_counter()
                if message.startswith(b":"):
                    self.ready.set()
                    continue
                for line in message.splitlines():
                    if line.startswith(b"data:"):
                        run_id = json.loads(line[5:])["id"]
                        self.received.setdefault(run_id, []).append(now)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _subscribe_many(base: str, token: str, count: int, ready: Any, stop: Any) -> dict[str, list[float]]:
    host, port = base.removeprefix("http://").split(":")
    received: dict[str, list[float]] = {}
    clients = [Subscriber(received) for _ in range(count)]
    tasks = []
    for start in range(0, count, 50):  # connect in waves so the accept queue keeps up
        for client in clients[start : start + 50]:
            tasks.append(asyncio.create_task(client.run(host, int(port), token)))
        await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 120)
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.05)
    for client in clients:
        client.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return received


def _subscriber_process(base: str, token: str, count: int, ready: Any, stop: Any, results: Any) -> None:
    """One process holding `count` SSE connections; sends back arrival times by run id."""
    results.put(run_async(_subscribe_many(base, token, count, ready, stop)))


def sse_latency(base: str, ids: dict[str, str], subscribers: int, events: int) -> dict[str, Any]:
    """Latency from the report's answer (in this process) to receipt at each subscriber.

    Subscribers live in their own processes (500 each), so the reporter's clock is not held
    up by their work; `time.perf_counter` is CLOCK_MONOTONIC, shared by every process.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    per_process = 500
    counts = [min(per_process, subscribers - start) for start in range(0, subscribers, per_process)]
    stop, results = context.Event(), context.Queue()
    readies = [context.Event() for _ in counts]
    processes = [
        # Daemons: when the benchmark fails, they end with it instead of keeping it waiting forever.
        context.Process(
            target=_subscriber_process,
            args=(base, ids["account_token"], n, ready, stop, results),
            daemon=True,
        )
        for n, ready in zip(counts, readies, strict=True)
    ]
    for process in processes:
        process.start()
    for ready in readies:
        if not ready.wait(180):
            raise RuntimeError("the subscribers did not all connect")
    answered: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {ids['device_token']}"}
    with httpx.Client(base_url=base, timeout=60) as http:
        for _ in range(events):
            body = report(ids["workflow_id"], ids["version_id"], steps=5)
            response = http.post("/api/v1/runs.report", json={"runs": [body]}, headers=headers)
            answered[body["id"]] = time.perf_counter()
            assert response.status_code == 200, response.text
            time.sleep(0.3)  # let every subscriber receive it before the next one
    time.sleep(1.0)
    stop.set()
    received: dict[str, list[float]] = {}
    for _ in processes:
        for run_id, times in results.get(timeout=120).items():
            received.setdefault(run_id, []).extend(times)
    for process in processes:
        process.join(timeout=30)
    latencies = [(t - answered[run_id]) * 1000 for run_id, times in received.items() for t in times]
    missing = subscribers * events - len(latencies)
    return {
        "subscribers": subscribers,
        "events": events,
        "deliveries": len(latencies),
        "missing": missing,
        "p50_ms": round(percentile(latencies, 0.5), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
    }


def run_async(coroutine: Any) -> Any:
    """Run on uvloop when it is installed: the 1,000 subscribers' own overhead is part of what is timed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", type=int, default=2000, help="runs sent in batches of 50 (and written directly)"
    )
    parser.add_argument("--single-runs", type=int, default=400, help="runs sent one per request")
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument(
        "--subscribers", default="100,1000", help='SSE subscriber counts; "" skips the latency part'
    )
    parser.add_argument("--events", type=int, default=30, help="reports timed per subscriber count")
    parser.add_argument(
        "--sqlite-workers", type=int, default=1, help="server processes on SQLite (embedded default: 1)"
    )
    parser.add_argument(
        "--pg-workers", type=int, default=4, help="server processes on PostgreSQL (scale-out)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="throughput rounds (best and median are reported)"
    )
    parser.add_argument("--skip-throughput", action="store_true", help="measure event latency only")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "when": utcnow().isoformat(),
        "machine": machine_info(),
        "settings": vars(args),
        "databases": {},
    }
    for kind in args.db.split(","):
        with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
            ids = seed(url)
            entry: dict[str, Any] = {}
            workers = args.sqlite_workers if kind == "sqlite" else args.pg_workers
            entry["workers"] = workers
            with server(url, workers) as base:
                if not args.skip_throughput:
                    rounds: dict[str, list[dict[str, Any]]] = {}
                    for _ in range(args.repeat):
                        rounds.setdefault("http_batch_1", []).append(
                            http_throughput(base, url, ids, args.single_runs, 1)
                        )
                        rounds.setdefault("http_batch_50", []).append(
                            http_throughput(base, url, ids, args.runs, 50)
                        )
                        direct = direct_throughput(url, ids, args.runs)
                        rounds.setdefault("direct_batch_50", []).append(direct)
                    for key, measured in rounds.items():
                        entry[key] = best_and_median(measured)
                entry["sse"] = [
                    sse_latency(base, ids, int(n), args.events)
                    for n in args.subscribers.split(",")
                    if n.strip()
                ]
            results["databases"][kind] = entry
            print(f"{kind}: done", file=sys.stderr)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)


def best_and_median(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest round, with the median runs/s (and CPU per run) of all rounds beside it."""
    best = dict(max(rounds, key=lambda row: row["runs_per_s"]))
    best["median_runs_per_s"] = round(statistics.median(row["runs_per_s"] for row in rounds), 1)
    for key in ("server_cpu_ms_per_run", "db_cpu_ms_per_run", "client_cpu_ms_per_run"):
        if key in best:
            best[f"median_{key}"] = round(statistics.median(row[key] for row in rounds), 3)
    best["rounds"] = len(rounds)
    return best


def print_table(results: dict[str, Any]) -> None:
    print(f"\nruns.report throughput ({EVENTS_PER_RUN} trace events a run, {CLIENTS} concurrent clients)")
    print(
        f"{'database':<11} {'path':<28} {'runs':>6} {'seconds':>8} {'runs/s':>9} {'median':>9} "
        f"{'server CPU ms/run':>18} {'db CPU ms/run':>14} {'client CPU ms/run':>18}"
    )
    for kind, entry in results["databases"].items():
        if "http_batch_1" not in entry:
            continue
        for key, label in (
            ("http_batch_1", "runs.report, batch 1"),
            ("http_batch_50", "runs.report, batch 50"),
            ("direct_batch_50", "direct insert, batch 50"),
        ):
            row = entry[key]
            label = f"{label} ({entry['workers']}p)" if key.startswith("http") else label
            server_cpu = row.get("median_server_cpu_ms_per_run", "")
            cpu = f"{server_cpu:>18} {row.get('median_db_cpu_ms_per_run', ''):>14}"
            cpu += f" {row.get('median_client_cpu_ms_per_run', ''):>18}"
            print(
                f"{kind:<11} {label:<28} {row['runs']:>6} {row['seconds']:>8} {row['runs_per_s']:>9} "
                f"{row['median_runs_per_s']:>9} {cpu}"
            )
        ratio = entry["http_batch_50"]["runs_per_s"] / entry["direct_batch_50"]["runs_per_s"]
        medians = entry["http_batch_50"]["median_runs_per_s"] / entry["direct_batch_50"]["median_runs_per_s"]
        print(f"{kind:<11} {'runs.report / direct':<28} {'':>6} {'':>8} {ratio:>9.2f} {medians:>9.2f}")
    print("\nrun.updated latency: report answered -> event received")
    print(
        f"{'database':<11} {'subscribers':>11} {'deliveries':>10} {'missing':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    for kind, entry in results["databases"].items():
        for row in entry["sse"]:
            print(
                f"{kind:<11} {row['subscribers']:>11} {row['deliveries']:>10} {row['missing']:>8} "
                f"{row['p50_ms']:>8} {row['p99_ms']:>8} {row['max_ms']:>8}"
            )
    print(f"\nwritten to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
