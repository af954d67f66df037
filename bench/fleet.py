"""Benchmark fleet dispatch: how fast N phones drain a shared queue.

    .venv/bin/python bench/fleet.py [--phones 1,5,10,20] [--runs 500] [--step-ms 20] [--workers 4]
                                    [--db postgresql|sqlite] [--idle wakeup|poll] [--dispatch 20]
                                    [--progress lease|gate|report] [--carry|--no-carry]

One server (`phoneflow serve --workers N`; PostgreSQL by default, a fresh schema dropped
afterwards) and, for each fleet size N, N virtual phones in this process: each is a paired device
tagged `bench` with its own token and HTTP connections (its step gates and reports over one kept
`http.client` connection, as the bridge sends them), serving like a bridge does — claim
(`POST /api/v1/devices/me/claim`; while idle it holds the wake-up long poll
`GET /api/v1/devices/me/wakeup?wait=25` as the bridge does, or with `--idle poll` claims every
50 ms), the real engine over the simulator (`SimulatedDevice`, real clock) asking the step gate
under a lease as the bridge does (`--progress lease`, the default: the claim asks for a lease and
the steps start without asking the gate until it runs out, a gate renewing it; the progress of
steps no gate carried goes in a `runs.report` once it is half a second old, as the bridge's
ticker sends it), or before every step (`--progress gate`: naming the step, the progress after each
step carried on the next step's gate, as bridges did before leases; `--progress report`: the
progress in a `runs.report` of its own per step, as bridges did before that), and the final
report carried on the phone's next claim, as the bridge does (`--carry`, the default: the last run's
goes on the claim that finds nothing queued), or through a `runs.report` of its own before the next
claim (`--no-carry`, as bridges did before). The queue is `--runs` runs of a 10-step workflow
(`action.wait` of `--step-ms`), queued as "any free phone with tag bench" runs, so every claim goes
through the tag path (FOR UPDATE SKIP LOCKED on PostgreSQL).

Per fleet size: drain time, runs/min, claim latency (the claim call that got a run, p50/p99),
efficiency (runs/min ÷ (N × the 1-phone rate)), busy time (a phone's time from a claim's answer
to the run's final report answered, per run) and its efficiency (1 phone's ÷ N phones': the
slowdown of a run itself, without the time phones wait for a claim), and runs lost (not success)
or run twice (claimed by two phones). The phones are threads of one Python process: on a small
machine the phones and the server share the cores, which is part of what is measured.

CPU time, not wall time, is the primary measure (the machine may be shared and loaded; the load
average is printed beside it): the server's processes (`phoneflow serve` and its workers, from /proc) per
run, and this process's (the phones: engine, step gate, reports; what a bridge spends) per step.
The idle server's CPU is measured for a few seconds before each drain (ms/s: the supervisor's pings every
10 s, the listeners' timeouts, each process's main loop's safety tick), and the runs'
own CPU is the drain's less that rate times the drain's duration: at one phone a run lasts ~0.2 s,
so the idle share is a large part of the total.
The simulator's own CPU (a phone's, on a real fleet) is measured apart by timing its calls; with
`action.wait` steps it is next to nothing. Dispatch: after the drain, with every phone idle,
`--dispatch` runs are queued one at a time; queued→running is the run's `startedAt` (its claim)
minus its `createdAt`, both the server's clock, p50/p99. Prints a table and writes
`bench/results/fleet.json`. The phones count the runs they ended (nothing polls the server for it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from json import dumps as _json_dumps
from pathlib import Path
from typing import Any

import httpx
from machine_info import machine_info
from serving import PG_URL, cpu_s, database, process_tree, server, threads_cpu_ns
from sqlalchemy import text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device_bridge.kept_http import kept_connection  # noqa: E402
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
STEPS = 10
IDLE_POLL_S = 0.05
# How long the idle server's CPU is measured before each drain.
IDLE_MEASURE_S = 3.0
WAKEUP_WAIT_S = 25
ENDED = ("success", "failed", "cancelled", "timeout")


def own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


class TimedSimulator(SimulatedDevice):
    """The simulator, counting the CPU its own calls take (a phone's share, reported apart)."""

    cpu_s = 0.0
    _lock = threading.Lock()

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name.startswith("_") or not callable(attr):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return attr(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                with TimedSimulator._lock:
                    TimedSimulator.cpu_s += spent

        return timed


def definition(step_ms: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": f"s{i}", "kind": "action.wait", "params": {"ms": step_ms}} for i in range(1, STEPS + 1)
    ]
    for here, there in zip(nodes, nodes[1:], strict=False):
        here["next"] = there["id"]
    return {"schemaVersion": 1, "name": "Ten steps", "start": "s1", "nodes": nodes}


def seed(url: str, phones: int, step_ms: int, bystanders: int = 0) -> dict[str, Any]:
    """An account, `phones` devices tagged `bench` and `bystanders` untagged ones, a published 10-step
    workflow."""
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
        others = []
        for n in range(bystanders):
            facts = devices_service.DeviceFacts(
                serial=f"IDLE{n:03d}", model="Virtual", android_version="14", name=None
            )
            device, device_token = devices_service.create_device(session, account.id, facts)
            others.append({"id": device.id, "token": device_token, "serial": facts.serial})
        workflow, version = workflows_service.create_workflow(
            session, account.id, "fleet", definition(step_ms)
        )
        workflow.published_version_id = version.id
        ids = {"token": token, "workflow_id": workflow.id, "devices": devices, "bystanders": others}
    engine.dispose()
    return ids


class Bystander(threading.Thread):
    """An idle phone of the same account that no run is for: it holds the wake-up long poll the whole
    time, as the idle phones of a real fleet do while others work (each process holding one then
    has someone listening to its run-event tail)."""

    def __init__(self, base: str, device: dict[str, str], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {device['token']}"}, timeout=60
        )
        self.stop = stop
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                woken = self.http.get("/api/v1/devices/me/wakeup", params={"wait": WAKEUP_WAIT_S})
                if woken.status_code != 200:
                    self.errors.append(f"bystander wakeup {woken.status_code}: {woken.text[:200]}")
                    self.stop.wait(0.5)
        except httpx.HTTPError:
            pass  # the server stopped at the end
        finally:
            self.http.close()


class KeptAnswer:
    """An answer over the kept connection, read as the benchmark reads httpx's."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status_code = status
        self.text = body.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.text)


class KeptClient:
    """POSTs over one kept `http.client` connection, as the bridge sends its step gates and reports
    (device_bridge/kept_http.py): httpx spends several times its CPU a request, on the same cores as
    the server it measures."""

    def __init__(self, base: str, token: str) -> None:
        kept = kept_connection(base)
        assert kept is not None, "a proxy is configured: the bridge would use httpx"
        self.kept = kept
        self.headers = {"Authorization": f"Bearer {token}"}

    def post(self, path: str, json: Any) -> KeptAnswer:
        body = _json_dumps(json, separators=(",", ":")).encode()
        return KeptAnswer(*self.kept.post(path, body, self.headers, timeout_s=60))

    def close(self) -> None:
        self.kept.close()


# The share of a lease the bridge uses, and how old unsent progress gets before it goes on its own
# (device_bridge/run_control.py LEASE_SHARE, the reporter's `interval_s`).
LEASE_SHARE = 0.9
PROGRESS_INTERVAL_S = 0.5


class GateControl:
    """The engine's run control over the server's step gate, as the bridge asks it: naming the step
    about to start and, with `--progress gate`, carrying the run's progress since the last gate;
    with `--progress lease`, only once the lease (from the claim or the last gate) has run out."""

    def __init__(
        self,
        http: KeptClient,
        run_id: str,
        progress: Callable[[], dict[str, Any] | None],
        lease_until: float = 0.0,
    ) -> None:
        self.http = http
        self.run_id = run_id
        self.progress = progress
        self.lease_until = lease_until  # monotonic; 0: ask before every step
        self.errors: list[str] = []

    def before_step(self, node_id: str, seq: int) -> StepDecision:
        if time.monotonic() < self.lease_until:
            return StepDecision.GO
        step: dict[str, Any] = {"seq": seq, "nodeId": node_id}
        if self.lease_until:
            step["lease"] = True
        report = self.progress()
        if report is not None:
            step["report"] = report
        asked_at = time.monotonic()
        answer = self.http.post(f"/api/v1/devices/me/runs/{self.run_id}/gate", json=step).json()
        if report is not None and (answer.get("report") or {}).get("result") not in ("stored", "unchanged"):
            self.errors.append(f"gate report: {answer}")
        if answer.get("cancelRequested"):
            return StepDecision.CANCEL
        if isinstance(answer.get("leaseMs"), int):
            self.lease_until = asked_at + LEASE_SHARE * answer["leaseMs"] / 1000
        return StepDecision.PAUSE if answer.get("paused") else StepDecision.GO


class VirtualPhone(threading.Thread):
    def __init__(
        self,
        base: str,
        device: dict[str, str],
        stop: threading.Event,
        idle: str,
        ended: threading.Semaphore,
        progress: str,
        carry: bool = True,
    ) -> None:
        super().__init__(daemon=True)
        self.idle = idle
        self.progress = progress
        self.carry = carry
        # The last run's final report, for the next claim to carry (once the server said it takes one).
        self.final: dict[str, Any] | None = None
        self.accepts_report = False
        self.dispatch_ms: list[float] = []
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {device['token']}"}, timeout=60
        )
        # The step gates and the reports over a kept connection, as the bridge sends them.
        self.kept = KeptClient(base, device["token"])
        self.device = device
        self.stop = stop
        self.claimed: list[str] = []
        self.claim_ms: list[float] = []
        self.busy_s = 0.0  # from a claim's answer to the run's final report answered (or queued, carried)
        self.errors: list[str] = []
        self.ended = ended

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                started = time.perf_counter()
                asked_at = time.monotonic()
                body: dict[str, Any] = {"lease": True} if self.progress == "lease" else {}
                carried, self.final = self.final, None
                if carried is not None:
                    body["report"] = carried
                answer = self.http.post("/api/v1/devices/me/claim", json=body)
                data = answer.json() if answer.status_code == 200 else None
                if carried is not None:
                    self._carried(carried, answer, data)
                if data is not None:
                    self.accepts_report = data.get("acceptsReport") is True
                if answer.status_code == 204 or (data is not None and data["run"] is None):
                    if self.idle == "wakeup":
                        woken = self.http.get("/api/v1/devices/me/wakeup", params={"wait": WAKEUP_WAIT_S})
                        if woken.status_code != 200:
                            self.errors.append(f"wakeup {woken.status_code}: {woken.text[:200]}")
                            self.stop.wait(0.5)
                    else:
                        self.stop.wait(IDLE_POLL_S)
                    continue
                if answer.status_code != 200:
                    self.errors.append(f"claim {answer.status_code}: {answer.text[:200]}")
                    self.stop.wait(0.5)
                    continue
                assert data is not None  # a 200
                self.claim_ms.append((time.perf_counter() - started) * 1000)
                busy_from = time.perf_counter()
                self.execute(data, asked_at)
                self.busy_s += time.perf_counter() - busy_from
        finally:
            self.http.close()
            self.kept.close()

    def execute(self, claimed: dict[str, Any], asked_at: float) -> None:
        run = claimed["run"]
        self.claimed.append(run["id"])
        self.dispatch_ms.append(
            (
                datetime.fromisoformat(run["startedAt"]) - datetime.fromisoformat(run["createdAt"])
            ).total_seconds()
            * 1000
        )
        base = {
            "id": run["id"],
            "workflowId": run["workflowId"],
            "workflowVersionId": run["workflowVersionId"],
            "trigger": run["trigger"],
            "inputs": run["inputs"],
        }
        trace: list[dict[str, Any]] = []
        carried = [0]
        unsent_since = [0.0]  # --progress lease: when the oldest step no report carried came

        def on_event(event: Any) -> None:  # one progress report per step
            trace.append(event.to_json())
            if self.progress == "report":
                self._report({**base, "status": "running", "trace": list(trace)})
            elif self.progress == "lease":
                now = time.monotonic()
                if not unsent_since[0]:
                    unsent_since[0] = now
                elif now - unsent_since[0] >= PROGRESS_INTERVAL_S:  # the reporter's ticker would send it
                    self._report({**base, "status": "running", "trace": list(trace)})
                    carried[0], unsent_since[0] = len(trace), 0.0

        def progress() -> dict[str, Any] | None:  # the progress the next gate carries
            if self.progress == "report" or len(trace) == carried[0]:
                return None
            carried[0], unsent_since[0] = len(trace), 0.0
            return {**base, "status": "running", "trace": list(trace)}

        lease_ms = claimed.get("leaseMs")
        lease_until = asked_at + LEASE_SHARE * lease_ms / 1000 if isinstance(lease_ms, int) else 0.0
        control = GateControl(self.kept, run["id"], progress, lease_until)

        clock = RealClock()
        result = run_workflow(
            claimed["definition"],
            TimedSimulator(sample_apps(), clock, serial=self.device["serial"], costs_ms={}),
            clock=clock,
            inputs=run["inputs"],
            run_id=run["id"],
            control=control,
            on_event=on_event,
        )
        self.errors.extend(control.errors)
        if self.carry and self.accepts_report:
            self.final = {**base, **result.to_json()}  # the next claim carries it
        else:
            self._report({**base, **result.to_json()})

    def _carried(self, report: dict[str, Any], answer: Any, data: dict[str, Any] | None) -> None:
        """The claim's answer for the report it carried; a claim that did not take it: runs.report."""
        result = (data.get("report") or {}).get("result") if data is not None else None
        if result in ("stored", "unchanged"):
            self.ended.release()
            return
        self.errors.append(f"carried report {answer.status_code}: {answer.text[:200]}")
        self._report(report)

    def _report(self, body: dict[str, Any]) -> None:
        answer = self.kept.post("/api/v1/runs.report", json={"runs": [body]})
        if answer.status_code != 200 or answer.json()["runs"][0]["result"] == "rejected":
            self.errors.append(f"report {answer.status_code}: {answer.text[:200]}")
        elif body["status"] in ENDED:
            self.ended.release()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


APPLICATION_NAME = f"phoneflow-fleet-{os.getpid()}"


def _backend_pids(url: str) -> list[int]:
    """The PostgreSQL backends serving the benchmark's server (its application_name)."""
    if not url.startswith("postgresql"):
        return []
    admin = make_engine(PG_URL, pool_pre_ping=False)
    try:
        with admin.connect() as conn:
            query = text("SELECT pid FROM pg_stat_activity WHERE application_name = :name")
            return list(conn.execute(query, {"name": APPLICATION_NAME}).scalars())
    finally:
        admin.dispose()


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_s(pid) for pid in pids}


def _spent(before: dict[int, float], pids: list[int]) -> dict[int, float]:
    """CPU seconds each of `pids` spent since `before` (a process started meanwhile: all of it)."""
    return {pid: cpu_s(pid) - before.get(pid, 0.0) for pid in pids}


def _py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy recording `pid` and its workers (raw stacks, one line each) until it gets SIGINT."""
    output.parent.mkdir(parents=True, exist_ok=True)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [py_spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "250", "--format", "raw"]
    command += ["--output", str(output), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def one_fleet(
    url: str,
    workers: int,
    phones: int,
    runs: int,
    step_ms: int,
    idle: str,
    dispatch: int,
    progress: str,
    profile: Path | None = None,
    bystanders: int = 0,
    carry: bool = True,
) -> dict[str, Any]:
    ids = seed(url, phones, step_ms, bystanders)
    account = {"Authorization": f"Bearer {ids['token']}"}
    # Named, so that the CPU of the server's PostgreSQL backends can be told from other clients'.
    named = f"{url}&application_name={APPLICATION_NAME}" if "?" in url else url
    with (
        server(url, workers, env={"PHONEFLOW_DATABASE_URL": named}) as (base, server_pid),
        httpx.Client(base_url=base, headers=account, timeout=60) as http,
    ):
        run_ids = []
        for _ in range(runs):
            queued = http.post(
                f"/api/v1/workflows/{ids['workflow_id']}/runs", json={"deviceTag": "bench", "inputs": {}}
            )
            queued.raise_for_status()
            run_ids.append(queued.json()["id"])
        stop = threading.Event()
        # The phones count the runs they ended (a final report the server accepted): watching the queue
        # by listing runs would be server CPU the fleet does not spend.
        ended = threading.Semaphore(0)
        fleet = [VirtualPhone(base, device, stop, idle, ended, progress, carry) for device in ids["devices"]]
        idlers = [Bystander(base, device, stop) for device in ids["bystanders"]]
        for idler in idlers:
            idler.start()
        time.sleep(1.0 if idlers else 0.0)  # their polls are held before the drain starts
        # The server's CPU while nobody sends it anything (each process's main loop tick and the
        # supervisor's health pings, the listeners' timeouts): a cost per second, not per run,
        # which the drain pays for as long as it lasts. Reported apart from what the runs cost.
        # (Per thread in nanoseconds: the processes' tick counts are too coarse for a few seconds.)
        serving_pids = process_tree(server_pid)
        idle0 = sum(threads_cpu_ns(pid) for pid in serving_pids)
        time.sleep(IDLE_MEASURE_S)
        idle_ns = sum(threads_cpu_ns(pid) for pid in serving_pids) - idle0
        idle_ms_per_s = idle_ns / 1e6 / IDLE_MEASURE_S
        load_before = os.getloadavg()[0]
        own_cpu0, sim_cpu0 = own_cpu_s(), TimedSimulator.cpu_s
        server0, db0 = _cpu_by_pid(process_tree(server_pid)), _cpu_by_pid(_backend_pids(url))
        spy = _py_spy(server_pid, profile / f"fleet-{phones}.txt") if profile is not None else None
        started = time.perf_counter()
        for phone in fleet:
            phone.start()
        for _ in run_ids:
            if not ended.acquire(timeout=600):
                raise RuntimeError("the fleet ended no run for 10 minutes: see the phones' errors")
        drain_s = time.perf_counter() - started
        by_process = _spent(server0, process_tree(server_pid))
        db_cpu = sum(_spent(db0, _backend_pids(url)).values())
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        server_cpu = sum(by_process.values())
        sim_cpu = TimedSimulator.cpu_s - sim_cpu0
        bench_cpu = own_cpu_s() - own_cpu0 - sim_cpu
        load_after = os.getloadavg()[0]
        busy_s = sum(phone.busy_s for phone in fleet)
        drain_dispatch = [ms for phone in fleet for ms in phone.dispatch_ms]
        for phone in fleet:
            phone.dispatch_ms.clear()
        # dispatch to idle phones: one run at a time, each queued once the previous one ended
        for _ in range(dispatch):
            time.sleep(0.3)  # every phone back to idle (holding its wake-up poll, or polling)
            queued = http.post(
                f"/api/v1/workflows/{ids['workflow_id']}/runs", json={"deviceTag": "bench", "inputs": {}}
            )
            queued.raise_for_status()
            one = queued.json()["id"]
            run_ids.append(one)
            ended.acquire(timeout=60)
        stop.set()
        for phone in fleet:
            phone.join(timeout=30)
        statuses = Counter(http.get(f"/api/v1/runs/{run_id}").json()["status"] for run_id in run_ids)
    claims = Counter(run_id for phone in fleet for run_id in phone.claimed)
    claim_ms = [ms for phone in fleet for ms in phone.claim_ms]
    idle_dispatch = [ms for phone in fleet for ms in phone.dispatch_ms]
    runs_total = runs + dispatch
    return {
        "phones": phones,
        "runs": runs,
        "drainS": round(drain_s, 2),
        "runsPerMin": round(runs / drain_s * 60, 1),
        "busyMsPerRun": round(busy_s * 1000 / runs, 1),
        "claimP50Ms": round(percentile(claim_ms, 0.5), 1),
        "claimP99Ms": round(percentile(claim_ms, 0.99), 1),
        "lost": runs_total - statuses.get("success", 0),
        "serverCpuMsPerRun": round(server_cpu * 1000 / runs, 2),
        "serverIdleMsPerS": round(idle_ms_per_s, 2),
        # What the runs themselves cost: the drain's CPU less the idle server's for the drain's time.
        "serverRunCpuMsPerRun": round((server_cpu * 1000 - idle_ms_per_s * drain_s) / runs, 2),
        # The busiest process first: the one serving the phones' kept connections is not always the same.
        "serverCpuByProcessMsPerRun": sorted(
            (round(spent * 1000 / runs, 2) for spent in by_process.values()), reverse=True
        ),
        "dbCpuMsPerRun": round(db_cpu * 1000 / runs, 2),
        "phonesCpuMsPerStep": round(bench_cpu * 1000 / (runs * STEPS), 3),
        "simulatorCpuMsPerStep": round(sim_cpu * 1000 / (runs * STEPS), 3),
        "busyRunsPerCpuS": round(runs / max(server_cpu + bench_cpu, 1e-9), 1),
        "loadAvg": [round(load_before, 2), round(load_after, 2)],
        "idleDispatchP50Ms": round(percentile(idle_dispatch, 0.5), 1),
        "idleDispatchP99Ms": round(percentile(idle_dispatch, 0.99), 1),
        "drainDispatchP50Ms": round(percentile(drain_dispatch, 0.5), 1),
        "twice": sum(1 for n in claims.values() if n > 1),
        "bystanders": bystanders,
        "errors": [
            *(e for phone in fleet for e in phone.errors),
            *(e for idler in idlers for e in idler.errors),
        ][:5],
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
    parser.add_argument("--idle", default="wakeup", choices=["wakeup", "poll"])
    parser.add_argument("--dispatch", type=int, default=20, help="runs queued one at a time to idle phones")
    parser.add_argument(
        "--progress",
        default="lease",
        choices=["lease", "gate", "report"],
        help="steps start under a lease (as the bridge does), or ask the gate before every step carrying "
        "the progress, or ask it and send each step's progress in its own runs.report",
    )
    parser.add_argument(
        "--carry",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the final report rides on the next claim (as the bridge sends it), or goes in a runs.report "
        "of its own (--no-carry, as bridges did before)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="a folder: py-spy records the server's processes during each drain (fleet-N.txt, raw stacks)",
    )
    parser.add_argument(
        "--bystanders",
        type=int,
        default=0,
        help="idle phones of the account holding the wake-up poll throughout (no run is for them)",
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.phones.split(",")]
    results: dict[str, Any] = {
        "machine": machine_info(),
        "db": args.db,
        "workers": args.workers,
        "stepMs": args.step_ms,
        "steps": STEPS,
        "idle": args.idle,
        "bystanders": args.bystanders,
        "progress": args.progress,
        "carry": args.carry,
        "fleets": [],
    }
    with tempfile.TemporaryDirectory() as workdir:
        for phones in sizes:
            with database(args.db, Path(workdir)) as url:
                results["fleets"].append(
                    one_fleet(
                        url,
                        args.workers,
                        phones,
                        args.runs,
                        args.step_ms,
                        args.idle,
                        args.dispatch,
                        args.progress,
                        args.profile,
                        args.bystanders,
                        args.carry,
                    )  # fmt: skip
                )
            print(f"  {phones} phone(s) done", file=sys.stderr)
    base_rate = next((f["runsPerMin"] for f in results["fleets"] if f["phones"] == 1), None)
    base_busy = next((f["busyMsPerRun"] for f in results["fleets"] if f["phones"] == 1), None)
    for fleet in results["fleets"]:
        fleet["efficiency"] = (
            round(fleet["runsPerMin"] / (fleet["phones"] * base_rate), 2) if base_rate else None
        )
        # Busy time only: a phone's time from claim to final report per run, against one phone's
        # (what N phones would reach if none ever waited for a claim).
        fleet["busyEfficiency"] = round(base_busy / fleet["busyMsPerRun"], 2) if base_busy else None
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print_table(results)


def print_table(results: dict[str, Any]) -> None:
    print(
        f"fleet drain: {results['db']}, {results['workers']} server process(es), "
        f"{results['steps']}-step runs of {results['stepMs']} ms waits, idle phones: {results['idle']}, "
        f"progress: {results.get('progress', 'report')}, idle bystanders: {results.get('bystanders', 0)}, "
        f"final report: {'on the next claim' if results.get('carry') else 'runs.report'}"
    )
    print(f"{'phones':>6} {'runs':>5} {'drain s':>8} {'runs/min':>9} {'claim p50':>10} {'claim p99':>10} "
          f"{'eff.':>5} {'busy ms/run':>12} {'busy eff.':>10} {'lost':>5} {'twice':>6}")  # fmt: skip
    for f in results["fleets"]:
        print(
            f"{f['phones']:>6} {f['runs']:>5} {f['drainS']:>8} {f['runsPerMin']:>9} {f['claimP50Ms']:>8}ms "
            f"{f['claimP99Ms']:>8}ms {f['efficiency'] if f['efficiency'] is not None else '-':>5} "
            f"{f['busyMsPerRun']:>12} {f.get('busyEfficiency') or '-':>10} {f['lost']:>5} {f['twice']:>6}"
        )
    print("CPU (primary measure) and dispatch to idle phones (queued→running, the server's clock)")
    print(f"{'phones':>6} {'server ms/run':>14} {'db ms/run':>10} {'phones ms/step':>15} {'sim ms/step':>12} "
          f"{'runs/CPU-s':>11} {'dispatch p50':>13} {'p99':>8} {'load avg':>12}")  # fmt: skip
    for f in results["fleets"]:
        print(
            f"{f['phones']:>6} {f['serverCpuMsPerRun']:>14} {f['dbCpuMsPerRun']:>10} "
            f"{f['phonesCpuMsPerStep']:>15} "
            f"{f['simulatorCpuMsPerStep']:>12} {f['busyRunsPerCpuS']:>11} {f['idleDispatchP50Ms']:>11}ms "
            f"{f['idleDispatchP99Ms']:>6}ms {f['loadAvg'][0]:>5}→{f['loadAvg'][1]:<5}"
        )
    print("server CPU by process, ms a run (busiest first); the idle server's CPU (ms/s) and the runs' own")
    print(f"{'phones':>6} {'idle ms/s':>10} {'runs ms/run':>12}  by process")
    for f in results["fleets"]:
        by_process = " ".join(str(ms) for ms in f["serverCpuByProcessMsPerRun"])
        print(f"{f['phones']:>6} {f['serverIdleMsPerS']:>10} {f['serverRunCpuMsPerRun']:>12}  {by_process}")
    for f in results["fleets"]:
        for error in f["errors"]:
            print(f"       error: {error}")


if __name__ == "__main__":
    main()
