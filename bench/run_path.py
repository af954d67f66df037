"""Benchmark the server's CPU per run on a phone's request path, request by request.

    .venv/bin/python bench/run_path.py [--runs 200] [--steps 10] [--db postgresql|sqlite]
                                       [--tag|--no-tag] [--lease|--no-lease] [--log|--no-log]
                                       [--progress gate|none] [--carry|--no-carry] [--profile FILE]

One server process (uvicorn, one worker; PostgreSQL by default, a fresh schema dropped afterwards)
and one phone in this process that does, one request at a time, what a bridge does for each run.
The defaults are bench/fleet.py's phones' own requests (its default `--progress lease`):

* the runs are queued beforehand (not timed) for "any free phone with tag bench" (`--tag`, the
  default: `{"deviceTag": "bench"}`, so each claim takes the tag path, FOR UPDATE SKIP LOCKED on
  PostgreSQL), or for the phone itself (`--no-tag`: `{"deviceId": ...}`);
* the claim (`POST /api/v1/devices/me/claim`) asks for a lease (`--lease`, the default:
  `{"lease": true}`); the steps then go under it without asking the step gate, as the bridge's do
  while a lease lasts (a run here lasts far less than one). `--no-lease`: no lease, and one step
  gate per step naming the step (`POST /api/v1/devices/me/runs/{id}/gate`) with the run's progress
  since the last gate on it (`--progress gate`: the run as the bridge's reporter sends it, status and
  the trace so far; `none`: no progress);
* the final report is the engine's own (`--log`, the default: `run_workflow` over the simulator on a
  virtual clock, with its trace and its engine log, 22 log entries for 10 steps, as the fleet's phones
  send it), or a trace only (`--no-log`, without the engine log), carried on the next claim, as the
  bridge sends it (`--carry`, the default: kind `claim+report`), or in a `runs.report` of its own
  (`--no-carry`, as bridges did before: kind `report`).

`--no-tag --no-lease --no-log` measures what this benchmark measured before those options. The
measured runs end with the claim that finds nothing queued (a 204, or with `--carry` the one carrying
the last run's report), as a phone's after its last run.

The server's CPU is read from /proc per thread (`schedstat`, nanoseconds) before and after every
request, so each kind of request gets its own CPU time: the sum is the server's CPU per run of the
fleet path (issue 17's target: <= 5 ms for a 10-step run). Nothing else talks to the server while it
is measured, so the machine's load does not count in (CPU, not wall time). `--profile FILE` records
the server with py-spy (a speedscope JSON) while the runs go. Prints a table and writes
`bench/results/run_path.json`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from machine_info import machine_info
from serving import database, server, threads_cpu_ns

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interpreter.appmodel import sample_apps  # noqa: E402
from interpreter.clock import VirtualClock  # noqa: E402
from interpreter.engine import run_workflow  # noqa: E402
from interpreter.simulator import SimulatedDevice  # noqa: E402
from server.accounts import service as accounts_service  # noqa: E402
from server.accounts.models import Plan  # noqa: E402
from server.db import make_engine, make_session_factory  # noqa: E402
from server.devices import service as devices_service  # noqa: E402
from server.workflows import service as workflows_service  # noqa: E402

RESULTS = REPO / "bench" / "results" / "run_path.json"
KINDS = ("claim", "claim+report", "gate", "report")
TAG = "bench"


def definition(steps: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": f"s{i}", "kind": "action.wait", "params": {"ms": 1}} for i in range(1, steps + 1)
    ]
    for here, there in zip(nodes, nodes[1:], strict=False):
        here["next"] = there["id"]
    return {"schemaVersion": 1, "name": "Steps", "start": "s1", "nodes": nodes}


def seed(url: str, steps: int) -> dict[str, Any]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        account, token = accounts_service.create_account(
            session, f"path-{uuid.uuid4().hex[:8]}@example.com", Plan.TEAM
        )
        facts = devices_service.DeviceFacts(serial="PATH1", model="Virtual", android_version="14", name=None)
        device, device_token = devices_service.create_device(session, account.id, facts)
        device.tags = [TAG]
        workflow, version = workflows_service.create_workflow(session, account.id, "path", definition(steps))
        workflow.published_version_id = version.id
        ids = {
            "token": token,
            "device_id": device.id,
            "device_token": device_token,
            "workflow_id": workflow.id,
        }
    engine.dispose()
    return ids


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def trace_event(seq: int, started: datetime) -> dict[str, Any]:
    return {
        "seq": seq,
        "nodeId": f"s{seq}",
        "kind": "action.wait",
        "outcome": "ok",
        "message": None,
        "startedAt": iso(started + timedelta(milliseconds=2 * seq)),
        "durationMs": 1,
        "attempts": 1,
        "output": {},
    }


class Phone:
    """One phone's requests, each timed by the server's CPU."""

    def __init__(
        self,
        base: str,
        token: str,
        pid: int,
        steps: int,
        progress: str,
        carry: bool = True,
        lease: bool = True,
        log: bool = True,
        run_s: float = 0.0,
    ) -> None:
        self.http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        self.pid = pid
        self.steps = steps
        self.progress = progress
        self.carry = carry
        self.lease = lease
        self.log = log
        self.run_s = run_s
        self.final: dict[str, Any] | None = None  # the last run's final report, for the next claim
        self.cpu_ns: dict[str, list[int]] = defaultdict(list)
        self.errors: list[str] = []

    def timed(self, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        before = threads_cpu_ns(self.pid)
        answer = self.http.request(method, path, **kwargs)
        # The server's thread may still be finishing (a callback after commit): a moment for it.
        self.cpu_ns[kind].append(threads_cpu_ns(self.pid) - before)
        if answer.status_code >= 400:
            self.errors.append(f"{kind} {answer.status_code}: {answer.text[:200]}")
        return answer

    def claim(self) -> dict[str, Any] | None:
        """Claim, carrying the last run's final report if one waits: the claimed run, or None."""
        carried, self.final = self.final, None
        body: dict[str, Any] = {"lease": True} if self.lease else {}
        if carried is None:
            answer = self.timed("claim", "POST", "/api/v1/devices/me/claim", json=body or None)
        else:
            answer = self.timed(
                "claim+report", "POST", "/api/v1/devices/me/claim", json={**body, "report": carried}
            )
            result = (answer.json().get("report") or {}).get("result") if answer.status_code == 200 else None
            if result != "stored":
                self.errors.append(f"carried report: {answer.text[:200]}")
        if answer.status_code != 200:
            return None
        run: dict[str, Any] | None = answer.json()["run"]
        if run is not None and self.lease and not isinstance(answer.json().get("leaseMs"), int):
            self.errors.append("claim: asked for a lease and got none")
        return run

    def flush(self) -> None:
        """Send a waiting final report by runs.report (between warm-up and measurement)."""
        if self.final is not None:
            self.http.post("/api/v1/runs.report", json={"runs": [self.final]}).raise_for_status()
            self.final = None

    def finish(self) -> None:
        """The claim after the last run, which finds nothing queued."""
        if self.claim() is not None:
            self.errors.append("the claim after the last run found one")

    def one_run(self) -> None:
        run = self.claim()
        if run is None:
            self.errors.append("claim: nothing to claim")
            return
        base = {
            "id": run["id"],
            "workflowId": run["workflowId"],
            "workflowVersionId": run["workflowVersionId"],
            "deviceId": run["deviceId"],
            "trigger": run["trigger"],
            "inputs": run["inputs"],
        }
        started = datetime.now(UTC)
        trace: list[dict[str, Any]] = []
        for seq in range(1, self.steps + 1) if not self.lease else ():
            body: dict[str, Any] = {"seq": seq, "nodeId": f"s{seq}"}
            if trace and self.progress != "none":
                body["report"] = {**base, "status": "running", "trace": list(trace)}
            gate = self.timed("gate", "POST", f"/api/v1/devices/me/runs/{run['id']}/gate", json=body)
            carried = (gate.json().get("report") or {}).get("result") if gate.status_code == 200 else None
            if "report" in body and carried not in ("stored", "unchanged"):
                self.errors.append(f"gate report: {gate.text[:200]}")
            trace.append(trace_event(seq, started))
        if self.run_s:
            time.sleep(self.run_s)  # the run's own time on the phone: the server idles meanwhile
        final = self.engine_report(base, run, started) if self.log else self.plain_report(base, started)
        if self.carry:
            self.final = final
            return
        answer = self.timed("report", "POST", "/api/v1/runs.report", json={"runs": [final]})
        if answer.status_code == 200 and answer.json()["runs"][0]["result"] != "stored":
            self.errors.append(f"report: {answer.text[:200]}")

    def plain_report(self, base: dict[str, Any], started: datetime) -> dict[str, Any]:
        """A successful run's final report with its trace only (no engine log)."""
        ended = started + timedelta(milliseconds=2 * self.steps + 5)
        return {
            **base,
            "status": "success",
            "startedAt": iso(started),
            "endedAt": iso(ended),
            "durationMs": 2 * self.steps + 5,
            "trace": [trace_event(seq, started) for seq in range(1, self.steps + 1)],
            "nSteps": self.steps,
            "nFailed": 0,
            "nRetries": 0,
        }

    def engine_report(self, base: dict[str, Any], run: dict[str, Any], started: datetime) -> dict[str, Any]:
        """The final report as the fleet's phones send it: the engine's own (trace and engine log), the
        run's definition run over the simulator on a virtual clock."""
        clock = VirtualClock(started)
        result = run_workflow(
            definition(self.steps),
            SimulatedDevice(sample_apps(), clock, serial="PATH1", costs_ms={}),
            clock=clock,
            inputs=run["inputs"],
            run_id=run["id"],
        )
        return {**base, **result.to_json()}


def measure(
    url: str,
    runs: int,
    steps: int,
    progress: str,
    warmup: int,
    profile: Path | None,
    carry: bool = True,
    tag: bool = True,
    lease: bool = True,
    log: bool = True,
    run_ms: int = 0,
) -> dict[str, Any]:
    ids = seed(url, steps)
    with (
        server(url, start_s=120) as (base, pid),
        httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {ids['token']}"}, timeout=60
        ) as account,
    ):
        for _ in range(runs + warmup):
            queued = account.post(
                f"/api/v1/workflows/{ids['workflow_id']}/runs",
                json={"deviceTag": TAG, "inputs": {}}
                if tag
                else {"deviceId": ids["device_id"], "inputs": {}},
            )
            queued.raise_for_status()
        phone = Phone(base, ids["device_token"], pid, steps, progress, carry, lease, log, run_ms / 1000)
        # A wake-up poll starts the run-event tail, as bridges' polls do on a serving server.
        phone.http.get("/api/v1/devices/me/wakeup", params={"wait": 0}).raise_for_status()
        for _ in range(warmup):
            phone.one_run()
        phone.flush()
        phone.cpu_ns.clear()
        spy = None
        if profile is not None:
            py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            spy = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "1000",
                    "--format",
                    "speedscope",
                    "--output",
                    str(profile),
                    "--threads",
                    "--nonblocking",
                    "--gil",
                ],  # fmt: skip
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        total0 = threads_cpu_ns(pid)
        for _ in range(runs):
            phone.one_run()
        phone.finish()
        total_ns = threads_cpu_ns(pid) - total0
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        phone.http.close()
    per_kind = {
        kind: {
            "requests": len(phone.cpu_ns[kind]),
            "msPerRequest": round(sum(phone.cpu_ns[kind]) / max(len(phone.cpu_ns[kind]), 1) / 1e6, 3),
            "msPerRun": round(sum(phone.cpu_ns[kind]) / runs / 1e6, 3),
        }
        for kind in KINDS
    }
    return {
        "runs": runs,
        "steps": steps,
        "progress": "lease" if lease else progress,
        "carry": carry,
        "tag": tag,
        "lease": lease,
        "log": log,
        "runMs": run_ms,
        "serverCpuMsPerRun": round(total_ns / runs / 1e6, 2),
        "kinds": per_kind,
        "errors": phone.errors[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--db", default="postgresql", choices=["postgresql", "sqlite"])
    parser.add_argument("--progress", default="gate", choices=["gate", "none"])
    parser.add_argument(
        "--carry",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the final report rides on the next claim (as the bridge sends it), or goes by runs.report",
    )
    parser.add_argument(
        "--tag",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"runs queued for any free phone with tag {TAG} (the fleet's), or for the phone itself",
    )
    parser.add_argument(
        "--lease",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the claim asks for a lease and the steps go under it (no gate), or a gate per step",
    )
    parser.add_argument(
        "--log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the final report is the engine's (trace and engine log), or a trace only",
    )
    parser.add_argument(
        "--run-ms",
        type=int,
        default=0,
        help="the phone's time running each run (the server idles meanwhile; a fleet's 10-step run of "
        "20 ms waits is ~210 ms); 0: the requests go back to back",
    )
    parser.add_argument("--profile", type=Path, default=None, help="a py-spy speedscope file of the server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, database(args.db, Path(workdir)) as url:
        result = measure(
            url,
            args.runs,
            args.steps,
            args.progress,
            args.warmup,
            args.profile,
            args.carry,
            args.tag,
            args.lease,
            args.log,
            args.run_ms,
        )
    results = {"machine": machine_info(), "db": args.db, **result}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(
        f"server CPU per run, one phone: {args.db}, {args.steps}-step runs queued for "
        f"{'tag ' + TAG if args.tag else 'the phone'}, "
        f"{'under a lease (no gates)' if args.lease else 'progress on the gate: ' + args.progress}, "
        f"final report ({'engine log' if args.log else 'trace only'}): "
        f"{'on the next claim' if args.carry else 'runs.report'}, {args.runs} runs"
    )
    print(f"{'request':>12} {'per run':>8} {'ms CPU each':>12} {'ms CPU per run':>15}")
    for kind, row in result["kinds"].items():
        if row["requests"]:
            per_run = round(row["requests"] / args.runs, 2)
            print(f"{kind:>12} {per_run:>8} {row['msPerRequest']:>12} {row['msPerRun']:>15}")
    print(f"{'total':>12} {'':>8} {'':>12} {result['serverCpuMsPerRun']:>15}")
    for error in result["errors"]:
        print(f"   error: {error}")


if __name__ == "__main__":
    main()
