"""Benchmark the device bridge.

    .venv/bin/python bench/bridge.py [--repeats 3] [--backlog 10000]

1. Bridge overhead: a 50-step workflow run through the bridge (the engine, the shared
   matcher, `U2Device`, progress reports into the outbox) on the emulator, against the same
   uiautomator2 calls made bare in a loop, in the same run. The bare calls are the very
   calls the bridge made: its uiautomator2 device is wrapped in a recorder for one run, and
   the bare loop replays the recording on the plain device. Runs alternate (bridge, bare, …)
   and the medians are compared. Target: the bridge adds at most 20 %.
   The emulator runs in a process of its own, as a phone would be a device of its own.
2. Outbox upload throughput: a backlog of 10,000 finished runs (5-event traces) queued in
   the outbox, then uploaded to a real server process (SQLite) in batches of 100.

Prints a table and writes `bench/results/bridge.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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

RESULTS = ROOT / "bench" / "results" / "bridge.json"
SHOP = "com.example.shop"
TARGET_OVERHEAD = 0.20


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
        device._u2 = recorder  # the bench's one look inside: record the calls the driver makes
        through_bridge()
        device._u2 = real
        calls = recorder.calls

        def bare() -> float:
            started = time.perf_counter()
            for name, args, kwargs in calls:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=5790, help="even console port of the bench emulator")
    args = parser.parse_args(argv)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
