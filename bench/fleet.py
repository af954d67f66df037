"""Benchmark fleet dispatch: how fast N phones drain a shared queue.

    .venv/bin/python bench/fleet.py [--phones 1,5,10,20] [--runs 500] [--step-ms 20] [--workers 4]
                                    [--db postgresql|sqlite]

One server (uvicorn, `--workers` processes; PostgreSQL by default, a fresh schema dropped
afterwards) and, for each fleet size N, N virtual phones in this process: each is a paired device
tagged `bench` with its own token and HTTP connection, serving like a bridge does — claim
(`POST /api/v1/devices/me/claim`, every 50 ms while idle), the real engine over the simulator
(`SimulatedDevice`, real clock) asking the step gate before every step, one progress report per
step and the final report through `runs.report`. The queue is `--runs` runs of a 10-step workflow
(`action.wait` of `--step-ms`), queued as "any free phone with tag bench" runs, so every claim goes
through the tag path (FOR UPDATE SKIP LOCKED on PostgreSQL).

Per fleet size: drain time, runs/min, claim latency (the claim call that got a run, p50/p99),
efficiency (runs/min ÷ (N × the 1-phone rate)), and runs lost (not success) or run twice (claimed
by two phones). The phones are threads of one Python process: on a small machine the phones and
the server share the cores, which is part of what is measured. Prints a table and writes
`bench/results/fleet.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from ingest import database, free_port
from machine_info import machine_info

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interpreter.appmodel import sample_apps  # noqa: E402
from interpreter.clock import RealClock  # noqa: E402
from interpreter.control import StepDecision  # noqa: E402
from interpreter.engine import run_workflow  # noqa: E402
from interpreter.simulator import SimulatedDevice  # noqa: E402
from server.accounts import service as accounts_service  # noqa: E402
from server.accounts.models import Plan  # noqa: E402
from server.db import make_engine, make_session_factory  # noqa: E402
from server.devices import service as devices_service  # noqa: E402
from server.workflows import service as workflows_service  # noqa: E402

RESULTS = REPO / "bench" / "results" / "fleet.json"
# Four server processes start in about a minute on a busy 2-core machine: wait longer than that.
SERVER_START_S = 300
STEPS = 10
IDLE_POLL_S = 0.05


def definition(step_ms: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": f"s{i}", "kind": "action.wait", "params": {"ms": step_ms}} for i in range(1, STEPS + 1)
    ]
    for here, there in zip(nodes, nodes[1:], strict=False):
        here["next"] = there["id"]
    return {"schemaVersion": 1, "name": "Ten steps", "start": "s1", "nodes": nodes}


def seed(url: str, phones: int, step_ms: int) -> dict[str, Any]:
    """An account, `phones` devices tagged `bench`, a published 10-step workflow."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        account, token = accounts_service.create_account(
            session, f"fleet-{uuid.uuid4().hex[:8]}@example.com", Plan.TEAM
        )
        devices = []
        for n in range(phones):
            facts = devices_service.DeviceFacts(
                serial=f"VIRT{n:03d}", model="Virtual", android_version="14", name=None
            )
            device, device_token = devices_service.create_device(session, account.id, facts)
            device.tags = ["bench"]
            devices.append({"id": device.id, "token": device_token, "serial": facts.serial})
        workflow, version = workflows_service.create_workflow(
            session, account.id, "fleet", definition(step_ms)
        )
        workflow.published_version_id = version.id
        ids = {"token": token, "workflow_id": workflow.id, "devices": devices}
    engine.dispose()
    return ids


@contextmanager
def server(url: str, workers: int) -> Iterator[str]:
    """A uvicorn server of `workers` processes on `url` (bench/ingest.py's, with a longer start)."""
    port = free_port()
    env = {
        **os.environ,
        "PHONEFLOW_DATABASE_URL": url,
        "PHONEFLOW_RUN_MIGRATIONS": "false",
        "PHONEFLOW_START_SCHEDULER": "false",
        "PHONEFLOW_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    command += ["--timeout-graceful-shutdown", "2", "--backlog", "4096"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the benchmark server did not start within {SERVER_START_S} s")
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


class GateControl:
    """The engine's run control over the server's step gate, as the bridge asks it."""

    def __init__(self, http: httpx.Client, run_id: str) -> None:
        self.http = http
        self.run_id = run_id

    def before_step(self, node_id: str, seq: int) -> StepDecision:
        answer = self.http.post(f"/api/v1/devices/me/runs/{self.run_id}/gate").json()
        if answer.get("cancelRequested"):
            return StepDecision.CANCEL
        return StepDecision.PAUSE if answer.get("paused") else StepDecision.GO


class VirtualPhone(threading.Thread):
    def __init__(self, base: str, device: dict[str, str], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {device['token']}"}, timeout=60
        )
        self.device = device
        self.stop = stop
        self.claimed: list[str] = []
        self.claim_ms: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                started = time.perf_counter()
                answer = self.http.post("/api/v1/devices/me/claim")
                if answer.status_code == 204:
                    self.stop.wait(IDLE_POLL_S)
                    continue
                if answer.status_code != 200:
                    self.errors.append(f"claim {answer.status_code}: {answer.text[:200]}")
                    self.stop.wait(0.5)
                    continue
                self.claim_ms.append((time.perf_counter() - started) * 1000)
                self.execute(answer.json())
        finally:
            self.http.close()

    def execute(self, claimed: dict[str, Any]) -> None:
        run = claimed["run"]
        self.claimed.append(run["id"])
        base = {
            "id": run["id"],
            "workflowId": run["workflowId"],
            "workflowVersionId": run["workflowVersionId"],
            "trigger": run["trigger"],
            "inputs": run["inputs"],
        }
        trace: list[dict[str, Any]] = []

        def on_event(event: Any) -> None:  # one progress report per step, as a bridge sends it
            trace.append(event.to_json())
            self._report({**base, "status": "running", "trace": list(trace)})

        clock = RealClock()
        result = run_workflow(
            claimed["definition"],
            SimulatedDevice(sample_apps(), clock, serial=self.device["serial"], costs_ms={}),
            clock=clock,
            inputs=run["inputs"],
            run_id=run["id"],
            control=GateControl(self.http, run["id"]),
            on_event=on_event,
        )
        self._report({**base, **result.to_json()})

    def _report(self, body: dict[str, Any]) -> None:
        answer = self.http.post("/api/v1/runs.report", json={"runs": [body]})
        if answer.status_code != 200 or answer.json()["runs"][0]["result"] == "rejected":
            self.errors.append(f"report {answer.status_code}: {answer.text[:200]}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def one_fleet(url: str, workers: int, phones: int, runs: int, step_ms: int) -> dict[str, Any]:
    ids = seed(url, phones, step_ms)
    account = {"Authorization": f"Bearer {ids['token']}"}
    with server(url, workers) as base, httpx.Client(base_url=base, headers=account, timeout=60) as http:
        run_ids = []
        for _ in range(runs):
            queued = http.post(
                f"/api/v1/workflows/{ids['workflow_id']}/runs", json={"deviceTag": "bench", "inputs": {}}
            )
            queued.raise_for_status()
            run_ids.append(queued.json()["id"])
        stop = threading.Event()
        fleet = [VirtualPhone(base, device, stop) for device in ids["devices"]]
        started = time.perf_counter()
        for phone in fleet:
            phone.start()
        pending = set(run_ids)
        while pending:
            page = http.get("/api/v1/runs", params={"workflowId": ids["workflow_id"], "limit": 500}).json()
            ended = {
                r["id"] for r in page["runs"] if r["status"] in ("success", "failed", "cancelled", "timeout")
            }
            pending -= ended
            if pending:
                time.sleep(0.1)
        drain_s = time.perf_counter() - started
        stop.set()
        for phone in fleet:
            phone.join(timeout=30)
        statuses = Counter(http.get(f"/api/v1/runs/{run_id}").json()["status"] for run_id in run_ids)
    claims = Counter(run_id for phone in fleet for run_id in phone.claimed)
    claim_ms = [ms for phone in fleet for ms in phone.claim_ms]
    return {
        "phones": phones,
        "runs": runs,
        "drainS": round(drain_s, 2),
        "runsPerMin": round(runs / drain_s * 60, 1),
        "claimP50Ms": round(percentile(claim_ms, 0.5), 1),
        "claimP99Ms": round(percentile(claim_ms, 0.99), 1),
        "lost": runs - statuses.get("success", 0),
        "twice": sum(1 for n in claims.values() if n > 1),
        "errors": [error for phone in fleet for error in phone.errors][:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phones", default="1,5,10,20")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--step-ms", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--db", default="postgresql", choices=["postgresql", "sqlite"])
    args = parser.parse_args()
    sizes = [int(n) for n in args.phones.split(",")]
    results: dict[str, Any] = {
        "machine": machine_info(),
        "db": args.db,
        "workers": args.workers,
        "stepMs": args.step_ms,
        "steps": STEPS,
        "fleets": [],
    }
    with tempfile.TemporaryDirectory() as workdir:
        for phones in sizes:
            with database(args.db, Path(workdir)) as url:
                results["fleets"].append(one_fleet(url, args.workers, phones, args.runs, args.step_ms))
            print(f"  {phones} phone(s) done", file=sys.stderr)
    base_rate = next((f["runsPerMin"] for f in results["fleets"] if f["phones"] == 1), None)
    for fleet in results["fleets"]:
        fleet["efficiency"] = (
            round(fleet["runsPerMin"] / (fleet["phones"] * base_rate), 2) if base_rate else None
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print_table(results)


def print_table(results: dict[str, Any]) -> None:
    print(
        f"fleet drain: {results['db']}, {results['workers']} server process(es), "
        f"{results['steps']}-step runs of {results['stepMs']} ms waits"
    )
    print(f"{'phones':>6} {'runs':>5} {'drain s':>8} {'runs/min':>9} {'claim p50':>10} {'claim p99':>10} "
          f"{'eff.':>5} {'lost':>5} {'twice':>6}")  # fmt: skip
    for f in results["fleets"]:
        print(
            f"{f['phones']:>6} {f['runs']:>5} {f['drainS']:>8} {f['runsPerMin']:>9} {f['claimP50Ms']:>8}ms "
            f"{f['claimP99Ms']:>8}ms {f['efficiency'] if f['efficiency'] is not None else '-':>5} "
            f"{f['lost']:>5} {f['twice']:>6}"
        )
        for error in f["errors"]:
            print(f"       error: {error}")


if __name__ == "__main__":
    main()
