"""Benchmark the device bridge.

    .venv/bin/python bench/bridge.py [--repeats 3] [--backlog 10000]

1. Bridge overhead: a 50-step workflow run through the bridge (the engine, the shared
   matcher, `U2Device`, progress reports into the outbox) on the emulator, against the same
   uiautomator2 calls made bare in a loop, in the same run. The bare calls are the very
   calls the bridge made: its uiautomator2 device and its JSON-RPC call are wrapped in a
   recorder for one run, and the bare loop replays the recording (the RPCs over the driver's
   kept connection, as the bridge sends them). Runs alternate (bridge, bare, …)
   and the medians are compared. Target: the bridge adds at most 20 %.
   The emulator runs in a process of its own, as a phone would be a device of its own.
2. Outbox upload throughput: a backlog of 10,000 finished runs (5-event traces) queued in
   the outbox, then uploaded to a real server process (SQLite) in batches of 100.
3. Bridge CPU per step (`--phones 1,5,10`): the real bridge (`python -m device_bridge run`, its
   own process) serving N virtual phones (emulator processes) for a real server process
   (SQLite); after one warm-up run per phone, `--runs` (1) runs of the 50-step workflow per phone,
   all queued at once. The bridge process's CPU time (user + system, from /proc, all its
   threads: engine, step gate, reports, frames, uploads, polls) over the runs and until its outbox
   is empty (every frame uploaded), per step; the phones' (emulators') and the server's CPU apart.
   With frames `every` (the default) and `off`. Target: the bridge at most 0.5 ms CPU per step at
   10 phones.

Prints a table and writes `bench/results/bridge.json` (`--only fleet`: `bridge-fleet.json`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from machine_info import machine_info, print_table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ADBUTILS_ADB_PATH", "/usr/bin/adb")

from device_bridge.driver import U2Device  # noqa: E402
from device_bridge.outbox import Outbox  # noqa: E402
from device_bridge.reporting import ProgressReporter  # noqa: E402
from device_bridge.uploader import Credentials, Uploader  # noqa: E402
from interpreter.engine import run_workflow  # noqa: E402
from interpreter.trace import RunStatus  # noqa: E402
from tests.bridge.server_process import ENDED  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bridge.json"
FLEET_RESULTS = ROOT / "bench" / "results" / "bridge-fleet.json"
SHOP = "com.example.shop"
TARGET_OVERHEAD = 0.20
TARGET_CPU_MS_PER_STEP = 0.5


def fifty_step_workflow() -> dict[str, Any]:
    """Launch the shop, then 7 rounds of type, type, read, tap, wait, back, wait: 50 UI steps."""
    nodes: list[dict[str, Any]] = [
        {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP, "stopFirst": True}}
    ]
    user = {"resourceId": f"{SHOP}:id/user"}
    for i in range(7):
        nodes += [
            {"id": f"user{i}", "kind": "action.typeText",
             "params": {"text": f"user{i}", "clear": True, "selector": user}},
            {"id": f"pw{i}", "kind": "action.typeText",
             "params": {"text": "secret", "clear": True, "selector": {"resourceId": f"{SHOP}:id/password"}}},
            {"id": f"read{i}", "kind": "action.readText", "params": {"selector": user}},
            {"id": f"sign{i}", "kind": "action.tapByText", "params": {"text": "Sign in"}},
            {"id": f"orders{i}", "kind": "action.waitForText",
             "params": {"text": "New order", "timeoutMs": 3000}},
            {"id": f"back{i}", "kind": "action.pressKey", "params": {"key": "back"}},
            {"id": f"login{i}", "kind": "action.waitForText",
             "params": {"text": "Sign in", "timeoutMs": 3000}},
        ]  # fmt: skip
    for here, there in zip(nodes, nodes[1:], strict=False):
        here["next"] = there["id"]
    assert len(nodes) == 50
    return {
        "schemaVersion": 1,
        "name": "bench 50 steps",
        "targetPackages": [SHOP],
        "start": "open",
        "nodes": nodes,
    }


class Recorder:
    """Stands in for a uiautomator2 device and records every method call made on it."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._real, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return target(*args, **kwargs)

        return call


def start_emulator_process(port: int) -> subprocess.Popen[bytes]:
    code = "from emulator.cli import emulator_app; emulator_app()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "start", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    serial = f"emulator-{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run(["adb", "devices"], capture_output=True, text=True).stdout
        if f"{serial}\tdevice" in out:
            return proc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{serial} did not show up in `adb devices` within 30 s")


def bench_overhead(repeats: int, port: int, state_dir: Path) -> dict[str, Any]:
    subprocess.run(["adb", "start-server"], check=True, capture_output=True)
    emulator = start_emulator_process(port)
    try:
        device = U2Device(f"emulator-{port}", lock_dir=state_dir / "locks")
        outbox = Outbox(state_dir / "bench-outbox.db")
        definition = fifty_step_workflow()

        def through_bridge() -> float:
            reporter = ProgressReporter(outbox, "bench-device", {"id": str(uuid.uuid4()), "inputs": {}})
            started = time.perf_counter()
            result = run_workflow(
                definition, device, on_event=reporter.on_event, on_status=reporter.on_status
            )
            elapsed = time.perf_counter() - started
            reporter.finish(result)
            if result.status is not RunStatus.SUCCESS:
                raise RuntimeError(f"the bench workflow ended {result.status}: {result.error_message}")
            return elapsed

        through_bridge()  # warm up: u2 server, installed-package cache, screen caches
        real = device.u2
        recorder = Recorder(real)
        rpc = device._rpc
        # The bench's one look inside: record the calls the driver makes, its JSON-RPCs (over its
        # kept connection) and the client's calls (shell, app_current, ...).
        device._u2 = recorder

        def recorded_rpc(method: str, *params: Any) -> Any:
            recorder.calls.append(("jsonrpc_call", (method, *params), {}))
            return rpc(method, *params)

        device._rpc = recorded_rpc  # type: ignore[method-assign]
        through_bridge()
        device._u2 = real
        device._rpc = rpc  # type: ignore[method-assign]
        calls = recorder.calls

        def bare() -> float:
            started = time.perf_counter()
            for name, args, kwargs in calls:
                if name == "jsonrpc_call":
                    rpc(*args)
                else:
                    getattr(real, name)(*args, **kwargs)
            return time.perf_counter() - started

        bridge_times, bare_times = [], []
        for _ in range(repeats):
            bridge_times.append(through_bridge())
            bare_times.append(bare())
        device.close()
        outbox.close()
    finally:
        emulator.terminate()
        emulator.wait(10)
    bridge_s, bare_s = statistics.median(bridge_times), statistics.median(bare_times)
    by_kind: dict[str, int] = {}
    for name, args, _ in calls:
        key = f"jsonrpc {args[0]}" if name == "jsonrpc_call" else name
        by_kind[key] = by_kind.get(key, 0) + 1
    return {
        "steps": 50,
        "repeats": repeats,
        "u2Calls": len(calls),
        "u2CallsByKind": by_kind,
        "bridgeS": bridge_times,
        "bareS": bare_times,
        "bridgeMedianS": bridge_s,
        "bareMedianS": bare_s,
        "overhead": bridge_s / bare_s - 1,
        "target": TARGET_OVERHEAD,
        "met": bridge_s / bare_s - 1 <= TARGET_OVERHEAD,
    }


def _event(seq: int, start: datetime) -> dict[str, Any]:
    at = (start + timedelta(milliseconds=50 * seq)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {"seq": seq, "nodeId": f"n{seq}", "kind": "action.tapByText", "outcome": "ok", "message": None,
            "startedAt": at, "durationMs": 48, "attempts": 1, "output": {}}  # fmt: skip


def bench_upload(backlog: int, state_dir: Path) -> dict[str, Any]:
    from tests.bridge.server_process import start_server

    server = start_server(state_dir / "server")
    try:
        device = server.device("bench-serial")
        with server.client() as client:
            created = client.post("/api/v1/workflows", json={"name": "bench", "definition": {
                "schemaVersion": 1, "name": "bench", "start": "w",
                "nodes": [{"id": "w", "kind": "action.wait", "params": {"ms": 1}}]}}).json()  # fmt: skip
        outbox = Outbox(state_dir / "upload-outbox.db")
        start = datetime.now(UTC)
        base = {"workflowId": created["id"], "workflowVersionId": created["versionId"], "trigger": "device",
                "inputs": {}, "deviceId": device.id, "status": "success"}  # fmt: skip
        trace = [_event(seq, start) for seq in range(1, 6)]
        queued_at = time.perf_counter()
        for _ in range(backlog):
            run = {**base, "id": str(uuid.uuid4()), "trace": trace, "nSteps": 5, "nFailed": 0, "nRetries": 0}
            outbox.enqueue(run, device.id)
        enqueue_s = time.perf_counter() - queued_at
        uploader = Uploader(outbox, lambda _d: Credentials(server.url, device.token), batch_size=100)
        started = time.perf_counter()
        sent = uploader.upload_all()
        upload_s = time.perf_counter() - started
        uploader.close()
        left = outbox.count()
        outbox.close()
    finally:
        server.stop()
    return {
        "backlog": backlog,
        "sent": sent,
        "left": left,
        "enqueueS": enqueue_s,
        "enqueuePerS": backlog / enqueue_s,
        "uploadS": upload_s,
        "uploadRunsPerS": sent / upload_s,
        "batchSize": 100,
        "server": "phoneflow server process, SQLite",
    }


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of `pid` and its live children (the server's workers)."""
    total = process_cpu_s(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else []:
        with contextlib.suppress(OSError):
            total += tree_cpu_s(int(child))
    return total


def drained(outbox_db: Path, timeout_s: float = 300) -> float:
    """Wait until the bridge's outbox holds nothing to send (reports, artifacts); seconds waited."""
    started = time.monotonic()
    query = (
        "SELECT (SELECT count(*) FROM reports WHERE state = 'pending')"
        " + (SELECT count(*) FROM artifacts WHERE state = 'pending')"
    )
    while time.monotonic() - started < timeout_s:
        with contextlib.closing(sqlite3.connect(outbox_db, timeout=30)) as db:
            if db.execute(query).fetchone()[0] == 0:
                break
        time.sleep(0.2)
    time.sleep(0.5)  # the uploader's last answers
    return time.monotonic() - started


def bench_fleet(phones: int, runs: int, frames: str, state_dir: Path) -> dict[str, Any]:
    from tests.bridge.conftest import free_console_port
    from tests.bridge.server_process import (
        pair_in_state_dir,
        poll_run,
        publish_workflow,
        start_agent,
        start_server,
        trigger,
    )

    state_dir.mkdir(parents=True)
    emulators: list[tuple[subprocess.Popen[bytes], str]] = []
    server = start_server(state_dir / "server")
    agent: subprocess.Popen[str] | None = None
    try:
        for _ in range(phones):
            port = free_console_port()
            emulators.append((start_emulator_process(port), f"emulator-{port}"))
        serials = [serial for _, serial in emulators]
        devices = [pair_in_state_dir(server, serial, state_dir / "bridge") for serial in serials]
        client = server.client()
        client.timeout = httpx.Timeout(60)
        workflow_id = publish_workflow(client, fifty_step_workflow())
        agent = start_agent(
            server, serials, state_dir / "bridge",
            PHONEFLOW_BRIDGE_FRAMES=frames, PHONEFLOW_LOG_LEVEL="WARNING",
        )  # fmt: skip

        def run_all(per_phone: int) -> float:
            started = time.perf_counter()
            ids = [trigger(client, workflow_id, d.id) for _ in range(per_phone) for d in devices]
            deadline = time.monotonic() + 120 + 30 * per_phone * phones
            for run_id in ids:
                run = poll_run(
                    client, run_id, lambda r: r["status"] in ENDED, deadline=deadline, what="run end"
                )
                if run["status"] != "success":
                    raise RuntimeError(f"bench run {run_id} ended {run['status']}: {run.get('errorMessage')}")
            return time.perf_counter() - started

        run_all(1)  # warm up: each phone's uiautomator2 server, package cache, screen caches
        drained(state_dir / "bridge" / "outbox.db")
        emulator_pids = [proc.pid for proc, _ in emulators]
        before = (
            process_cpu_s(agent.pid),
            sum(map(process_cpu_s, emulator_pids)),
            tree_cpu_s(server.process.pid),
        )
        load_before = os.getloadavg()[0]
        wall = run_all(runs)
        # The frames' uploads: the uploader may be far behind the steps on a loaded machine, and
        # what it spends sending them is the bridge's cost of those steps.
        drain_s = drained(state_dir / "bridge" / "outbox.db")
        after = (
            process_cpu_s(agent.pid),
            sum(map(process_cpu_s, emulator_pids)),
            tree_cpu_s(server.process.pid),
        )
        client.close()
    finally:
        if agent is not None:
            agent.terminate()  # it ends its held polls and each phone's uiautomator2 server first
            try:
                agent.wait(90)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait(10)
        for proc, _ in emulators:
            proc.terminate()
            proc.wait(10)
        server.stop()
    steps = 50 * runs * phones
    bridge_ms, phones_ms, server_ms = ((a - b) * 1000 / steps for a, b in zip(after, before, strict=True))
    return {
        "phones": phones,
        "runs": runs * phones,
        "steps": steps,
        "frames": frames,
        "wallS": wall,
        "drainS": drain_s,
        "bridgeCpuMsPerStep": bridge_ms,
        "phonesCpuMsPerStep": phones_ms,
        "serverCpuMsPerStep": server_ms,
        "loadAverage": [load_before, os.getloadavg()[0]],
        "target": TARGET_CPU_MS_PER_STEP,
        "met": bridge_ms <= TARGET_CPU_MS_PER_STEP,
    }


def main_fleet(phone_counts: list[int], runs: int, frame_modes: list[str]) -> int:
    subprocess.run(["adb", "start-server"], check=True, capture_output=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-bridge-fleet-") as tmp:
        for frames in frame_modes:
            for phones in phone_counts:
                results.append(bench_fleet(phones, runs, frames, Path(tmp) / f"{frames}-{phones}"))
    FLEET_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    FLEET_RESULTS.write_text(
        json.dumps(
            {"when": datetime.now(UTC).isoformat(), "machine": machine_info(), "fleet": results}, indent=2
        )
        + "\n"
    )
    rows: list[tuple[str, str, str]] = []
    for r in results:
        rows.append((
            f"bridge CPU per step, {r['phones']} phone(s), frames {r['frames']}",
            f"{r['bridgeCpuMsPerStep']:.2f} ms",
            f"target ≤ {TARGET_CPU_MS_PER_STEP} ms: {'met' if r['met'] else 'NOT met'}; "
            f"phones {r['phonesCpuMsPerStep']:.2f} ms, server {r['serverCpuMsPerStep']:.2f} ms; "
            f"{r['steps']} steps in {r['wallS']:.0f} s (+{r['drainS']:.0f} s uploads), "
            f"load {r['loadAverage'][0]:.1f}",
        ))  # fmt: skip
    print_table(rows)
    print(f"wrote {FLEET_RESULTS.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=5790, help="even console port of the bench emulator")
    parser.add_argument("--only", choices=["overhead-upload", "fleet"], help="run one part")
    parser.add_argument("--phones", default="1,5,10", help="fleet sizes for the bridge CPU part")
    parser.add_argument("--runs", type=int, default=1, help="runs per phone in the bridge CPU part")
    parser.add_argument("--frames", default="every,off", help="frame modes for the bridge CPU part")
    args = parser.parse_args(argv)
    fleet_args = ([int(n) for n in args.phones.split(",")], args.runs, args.frames.split(","))
    if args.only == "fleet":
        return main_fleet(*fleet_args)
    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as tmp:
        state_dir = Path(tmp)
        overhead = bench_overhead(args.repeats, args.port, state_dir)
        upload = bench_upload(args.backlog, state_dir)
    results = {
        "when": datetime.now(UTC).isoformat(),
        "machine": machine_info(),
        "overhead": overhead,
        "upload": upload,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    rows: list[tuple[str, str, str]] = [
        ("50-step workflow through the bridge (median)", f"{overhead['bridgeMedianS'] * 1000:.0f} ms", ""),
        ("the same u2 calls bare (median)", f"{overhead['bareMedianS'] * 1000:.0f} ms",
         f"{overhead['u2Calls']} calls"),
        ("bridge overhead", f"{overhead['overhead'] * 100:+.1f} %",
         f"target ≤ {TARGET_OVERHEAD * 100:.0f} %: {'met' if overhead['met'] else 'NOT met'}"),
        (f"outbox: queue {upload['backlog']:,} runs", f"{upload['enqueueS']:.1f} s",
         f"{upload['enqueuePerS']:.0f} runs/s"),
        (f"outbox: upload {upload['sent']:,} runs", f"{upload['uploadS']:.1f} s",
         f"{upload['uploadRunsPerS']:.0f} runs/s, {upload['left']} left"),
    ]  # fmt: skip
    print_table(rows)
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if args.only else main_fleet(*fleet_args)


if __name__ == "__main__":
    raise SystemExit(main())
