"""Benchmark screens per step (watch and replay a run).

    .venv/bin/python bench/replay.py [--repeats 5]

1. Capture cost: the 50-step workflow of bench/bridge.py run through the engine on the emulator
   (its own process, as a phone is a device of its own) with `U2Device`, progress reports and the
   frame recorder queuing into the outbox: frames `every` step against `off`, alternating in the
   same run, medians compared. Target: every-step capture adds at most 25 %. Beside the wall
   time, the CPU time each run cost the bench process (engine, driver, frame thread), the emulator
   process and the adb server (from /proc, all their threads): on a shared machine the wall time
   moves with the others' load, the CPU time much less. `--pin` puts the emulator on the first
   core and the bench on the second (taskset; the adb server is left where it is), to tell the
   frames' own cost from three processes contending for two cores.
2. Frame size: the bytes of one 50-step run's frames. Target: at most 3 MB.
3. First live frame: the bridge's worker runs the 50-step workflow for a real server process
   while its uploader thread sends the outbox, and a client follows `GET /api/v1/events`. For
   each step, the time from the step's end (its trace `startedAt` + `durationMs`) to the moment
   the client has the `run.frame` event and the frame's bytes. Target: p95 at most 500 ms.

Prints a table and writes `bench/results/replay.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse
from machine_info import machine_info, print_table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ADBUTILS_ADB_PATH", "/usr/bin/adb")

from bridge import fifty_step_workflow, process_cpu_s, start_emulator_process  # noqa: E402

from device_bridge.agent import DeviceWorker  # noqa: E402
from device_bridge.driver import U2Device  # noqa: E402
from device_bridge.frames import FrameMode, FramePolicy, FrameRecorder  # noqa: E402
from device_bridge.outbox import Outbox  # noqa: E402
from device_bridge.reporting import ProgressReporter  # noqa: E402
from device_bridge.settings import BridgeSettings  # noqa: E402
from device_bridge.state import BridgeState  # noqa: E402
from device_bridge.uploader import Credentials, Uploader  # noqa: E402
from interpreter.engine import run_workflow  # noqa: E402
from interpreter.trace import RunStatus  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "replay.json"
TARGET_OVERHEAD = 0.25
TARGET_LIVE_P95_MS = 500.0
TARGET_RUN_BYTES = 3_000_000


def adb_server_pid() -> int | None:
    """The adb server's process id (the one `adb start-server` forked), or None when none is found."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if Path(argv[0].decode(errors="replace")).name == "adb" and b"fork-server" in argv:
            return int(entry.name)
    return None


def cpu_now(pids: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds so far of each named process (0 for one that is not there)."""
    return {name: process_cpu_s(pid) if pid is not None else 0.0 for name, pid in pids.items()}


def bench_capture(device: U2Device, outbox: Outbox, repeats: int, emulator_pid: int) -> dict[str, Any]:
    definition = fifty_step_workflow()
    pids = {"bench": os.getpid(), "emulator": emulator_pid, "adb": adb_server_pid()}

    def one(mode: FrameMode) -> tuple[float, int, dict[str, float], int]:
        run_id = str(uuid.uuid4())
        reporter = ProgressReporter(outbox, "bench-device", {"id": run_id, "inputs": {}})
        cpu_before = cpu_now(pids)
        started = time.perf_counter()
        # The run's time includes waiting for its last frame (leaving the block).
        with FrameRecorder(device, outbox, run_id, "bench-device", FramePolicy(mode)) as recorder:
            result = run_workflow(
                definition,
                device,
                on_event=reporter.on_event,
                on_status=reporter.on_status,
                observer=recorder,
            )
        elapsed = time.perf_counter() - started
        cpu_after = cpu_now(pids)
        reporter.finish(result)
        if result.status is not RunStatus.SUCCESS:
            raise RuntimeError(f"the bench workflow ended {result.status}: {result.error_message}")
        size = sum(len(a.data) for a in outbox.artifacts() if a.run_id == run_id)
        cpu = {name: cpu_after[name] - cpu_before[name] for name in pids}
        return elapsed, size, cpu, recorder.shared

    one(FrameMode.EVERY)  # warm up: u2 server, package cache, the emulator's screen caches
    off_times, every_times, sizes = [], [], []
    off_cpu: list[dict[str, float]] = []
    every_cpu: list[dict[str, float]] = []
    shared: list[int] = []
    for _ in range(repeats):
        elapsed, _size, cpu, _shared = one(FrameMode.OFF)
        off_times.append(elapsed)
        off_cpu.append(cpu)
        elapsed, size, cpu, n_shared = one(FrameMode.EVERY)
        every_times.append(elapsed)
        every_cpu.append(cpu)
        sizes.append(size)
        shared.append(n_shared)
    off_s, every_s = statistics.median(off_times), statistics.median(every_times)
    # CPU in clock ticks (10 ms) per process: the mean over the runs, not a median of coarse values.
    off_cpu_s = {name: statistics.fmean(c[name] for c in off_cpu) for name in pids}
    every_cpu_s = {name: statistics.fmean(c[name] for c in every_cpu) for name in pids}
    off_cpu_total, every_cpu_total = sum(off_cpu_s.values()), sum(every_cpu_s.values())
    # Each every-step run beside the off run just before it: on a shared machine the load moves
    # between pairs more than within one.
    paired = statistics.median(e / o - 1 for e, o in zip(every_times, off_times, strict=True))
    return {
        "overheadPaired": paired,
        "steps": 50,
        "repeats": repeats,
        "offS": off_times,
        "everyS": every_times,
        "offMedianS": off_s,
        "everyMedianS": every_s,
        "overhead": every_s / off_s - 1,
        "target": TARGET_OVERHEAD,
        "met": every_s / off_s - 1 <= TARGET_OVERHEAD,
        "offCpuS": off_cpu_s,
        "everyCpuS": every_cpu_s,
        "cpuOverhead": every_cpu_total / off_cpu_total - 1 if off_cpu_total else None,
        "sharedFrames": shared,
        "runFrameBytes": sizes,
        "runFrameBytesMax": max(sizes),
        "bytesTarget": TARGET_RUN_BYTES,
        "bytesMet": max(sizes) <= TARGET_RUN_BYTES,
    }


def bench_live(serial: str, state_dir: Path, runs: int) -> dict[str, Any]:
    from tests.bridge.server_process import pair_in_state_dir, publish_workflow, start_server, trigger

    server = start_server(state_dir / "server")
    try:
        device = pair_in_state_dir(server, serial, state_dir / "bridge")
        settings = BridgeSettings(state_dir=state_dir / "bridge", server_url=server.url)
        settings.ensure_state_dir()
        paired = BridgeState(settings.state_db).device(serial)
        outbox = Outbox(settings.outbox_db)
        phone = U2Device(serial, lock_dir=settings.lock_dir)
        worker = DeviceWorker(paired, phone, outbox, settings, threading.Event())
        uploader = Uploader(outbox, lambda _d: Credentials(server.url, device.token))
        stop = threading.Event()
        upload_thread = threading.Thread(target=uploader.run, args=(stop,), daemon=True)
        upload_thread.start()
        client = server.client()
        workflow_id = publish_workflow(client, fifty_step_workflow())
        arrivals: dict[tuple[str, int], float] = {}
        subscribed = threading.Event()

        def follow() -> None:
            try:
                listen()
            except httpx.HTTPError:
                return  # the server stopped at the end of the bench

        def listen() -> None:
            with httpx.Client(base_url=server.url, headers=client.headers, timeout=None) as sse_client:
                with connect_sse(sse_client, "GET", "/api/v1/events") as source:
                    subscribed.set()
                    for sse in source.iter_sse():
                        if sse.event != "run.frame":
                            continue
                        frame = json.loads(sse.data)
                        sse_client.get(frame["url"]).raise_for_status()  # what the page loads next
                        arrivals[(frame["id"], int(frame["seq"]))] = time.time()
                        if stop.is_set():
                            return

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        subscribed.wait(30)
        latencies: list[float] = []
        for _ in range(runs):
            run_id = trigger(client, workflow_id, device.id)
            claimed = worker.api.claim()
            assert claimed is not None
            result = worker.execute(claimed)
            assert result is not None
            assert result.status is RunStatus.SUCCESS, result.error_message
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len([k for k in arrivals if k[0] == run_id]) < 50:
                time.sleep(0.05)
            for event in result.trace:
                ended = event.started_at.timestamp() + event.duration_ms / 1000
                arrived = arrivals.get((run_id, event.seq))
                if arrived is not None:
                    latencies.append((arrived - ended) * 1000)
        stop.set()
        upload_thread.join(30)
        uploader.close()
        worker.client.close()
        phone.close()
        outbox.close()
        client.close()
    finally:
        server.stop()
    latencies.sort()
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)] if latencies else float("nan")
    return {
        "runs": runs,
        "frames": len(latencies),
        "medianMs": statistics.median(latencies) if latencies else None,
        "p95Ms": p95,
        "maxMs": max(latencies) if latencies else None,
        "target": TARGET_LIVE_P95_MS,
        "met": p95 <= TARGET_LIVE_P95_MS,
        "server": "phoneflow server process, SQLite; the uploader thread and an SSE client in the bench",
    }


def cpu_row(cpu: dict[str, float]) -> str:
    return " / ".join(f"{cpu[name] * 1000:.0f}" for name in ("bench", "emulator", "adb")) + " ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--live-runs", type=int, default=2)
    parser.add_argument(
        "--port", type=int, default=0, help="even console port of the emulator (0: a free one)"
    )
    parser.add_argument(
        "--pin", action="store_true", help="the emulator on the first core, the bench on the second (taskset)"
    )
    args = parser.parse_args(argv)
    import subprocess

    from tests.bridge.conftest import free_console_port

    subprocess.run(["adb", "start-server"], check=True, capture_output=True)
    port = args.port or free_console_port()
    emulator = start_emulator_process(port)
    serial = f"emulator-{port}"
    if args.pin:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) < 2:
            raise SystemExit("--pin needs two cores")
        subprocess.run(["taskset", "-apc", str(cores[0]), str(emulator.pid)], check=True, capture_output=True)
        os.sched_setaffinity(0, {cores[1]})
    try:
        with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
            state_dir = Path(tmp)
            device = U2Device(serial, lock_dir=state_dir / "locks")
            outbox = Outbox(state_dir / "capture-outbox.db")
            capture = bench_capture(device, outbox, args.repeats, emulator.pid)
            device.close()
            outbox.close()
            live = bench_live(serial, state_dir, args.live_runs)
    finally:
        emulator.terminate()
        emulator.wait(10)
    results = {
        "when": datetime.now(UTC).isoformat(),
        "machine": machine_info(),
        "pinned": args.pin,
        "capture": capture,
        "live": live,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    rows: list[tuple[str, str, str]] = [
        ("50-step run, frames off (median)", f"{capture['offMedianS'] * 1000:.0f} ms", ""),
        ("50-step run, frames every step (median)", f"{capture['everyMedianS'] * 1000:.0f} ms", ""),
        ("capture overhead", f"{capture['overhead'] * 100:+.1f} %",
         f"target ≤ {TARGET_OVERHEAD * 100:.0f} %: {'met' if capture['met'] else 'NOT met'}"),
        ("capture overhead, median of run pairs", f"{capture['overheadPaired'] * 100:+.1f} %",
         "each every-step run against the off run before it"),
        ("CPU per run, frames off: bench / emulator / adb", cpu_row(capture["offCpuS"]), ""),
        ("CPU per run, frames every step: bench / emulator / adb", cpu_row(capture["everyCpuS"]), ""),
        ("capture overhead in CPU (the three processes)", f"{capture['cpuOverhead'] * 100:+.1f} %",
         f"{statistics.median(capture['sharedFrames'])} of 50 frames shared a picture"),
        ("one run's frames (largest)", f"{capture['runFrameBytesMax'] / 1000:.0f} KB",
         f"target ≤ 3 MB: {'met' if capture['bytesMet'] else 'NOT met'}"),
        ("first live frame after its step ends (median)", f"{live['medianMs']:.0f} ms",
         f"{live['frames']} frames"),
        ("first live frame after its step ends (p95)", f"{live['p95Ms']:.0f} ms",
         f"target ≤ {TARGET_LIVE_P95_MS:.0f} ms: {'met' if live['met'] else 'NOT met'}"),
    ]  # fmt: skip
    print_table(rows)
    if args.pin:
        print("pinned: the emulator on one core, the bench on the other")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
