"""Measure what each `Device` call costs on the virtual device, through the uiautomator2 driver.

    .venv/bin/python bench/device_costs.py [--repeats 30]

The simulator charges these costs to its virtual clock (`interpreter/device_costs.py`), so
that a workflow racing a delayed widget or a run cap ends the same way there as on a phone.
Prints a table (median and p90 per call, in ms) and writes `bench/results/device_costs.json`.
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
from collections.abc import Callable
from pathlib import Path

from machine_info import machine_info

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ADBUTILS_ADB_PATH", "/usr/bin/adb")

from device_bridge.driver import U2Device  # noqa: E402
from emulator.runner import Emulator  # noqa: E402
from interpreter.device_costs import DEVICE_COSTS_MS  # noqa: E402
from interpreter.hierarchy import from_android_xml  # noqa: E402
from tests.bridge.conftest import free_console_port  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "device_costs.json"
SHOP = "com.example.shop"


def measure(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    subprocess.run(["adb", "start-server"], check=True, capture_output=True)
    emulator = Emulator(None, console_port=free_console_port())
    emulator.start()
    emulator.wait_ready(timeout=15)
    rows: dict[str, tuple[float, float]] = {}
    try:
        locks = tempfile.mkdtemp(prefix="device-costs-")
        with U2Device(emulator.serial, lock_dir=Path(locks)) as device:
            device.launch_app(SHOP, stop_first=True)
            root = device.hierarchy()
            user = next(n for n in root.walk() if n.resource_id == f"{SHOP}:id/user")
            x, y = user.bounds.center
            n = args.repeats
            rows["launch"] = measure(lambda: device.launch_app(SHOP, stop_first=True), n)
            # A step's look follows a change of the screen, so it always dumps and parses: measured as
            # such (hierarchy() answers a look right after another from the one before, for free).
            rows["hierarchy"] = measure(lambda: from_android_xml(device.hierarchy_xml()), n)
            rows["foreground"] = measure(device.foreground_package, n)
            rows["tap"] = measure(lambda: device.tap(x, y), n)
            rows["input_text"] = measure(lambda: device.input_text("ab", clear=True), n)
            rows["press_key"] = measure(lambda: device.press_key("space"), n)
            rows["swipe"] = measure(lambda: device.swipe(540, 1500, 540, 900, 250), n)
            rows["stop"] = measure(lambda: device.stop_app(SHOP), n)
            rows["screenshot"] = measure(device.screenshot, max(n // 3, 3))
    finally:
        emulator.stop()
    print(f"{'call':<12} {'median ms':>10} {'p90 ms':>8} {'simulator charges ms':>21}")
    for name, (median, p90) in rows.items():
        charged = DEVICE_COSTS_MS.get(name, 0) + (250 if name == "swipe" else 0)  # a 250 ms swipe
        print(f"{name:<12} {median:>10.1f} {p90:>8.1f} {charged:>21}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": machine_info(),
                "repeats": args.repeats,
                "ms": {k: {"median": round(m, 1), "p90": round(p, 1)} for k, (m, p) in rows.items()},
                "simulator_ms": DEVICE_COSTS_MS,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
