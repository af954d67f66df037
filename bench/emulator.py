"""Benchmark the virtual device through the real clients: Debian's adb and uiautomator2 3.7.1.

    .venv/bin/python bench/emulator.py [--port 5584] [--rounds 50]

Measures, end to end through the adb server:
- ready: from `Emulator.start()` to the first successful `uiautomator2.connect` (which pushes
  and md5-checks u2.jar, launches `app_process` and pings the server);
- a click round trip on a button whose click changes the screen, and `dump_hierarchy()` of a
  200-widget screen, each two ways: over one kept-alive adb `tcp:9008` stream (what the device
  costs, the number the targets are about) and through the uiautomator2 client (which adds about
  12 ms per call of its own: adbutils opens a fresh adb connection per call, asks the adb server
  its version on another one first, and sleeps 10 ms when closing that);
- a screenshot (`d.screenshot()`, JPEG over JSON-RPC), of a screen just changed (drawn anew)
  and of an unchanged one (from the renderer's cache);
- the same click and page source through a real Appium 3 server with its UiAutomator2 driver
  (`tests/appium/node_modules`, installed by `make system-deps`; skipped, saying why, without
  it): the session's start, `mobile: clickGesture` at a point, a found element's `click()`, and
  `driver.page_source` — each a client → Appium server → device round trip.

Prints a table and writes `bench/results/emulator.json`. Targets: ready < 1 s, click < 10 ms,
hierarchy < 20 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from machine_info import machine_info

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.runner import Emulator  # noqa: E402
from interpreter.appmodel import AppModel  # noqa: E402

PACKAGE = "com.example.bench"
RESULTS = ROOT / "bench" / "results" / "emulator.json"
GRID = 14  # 14 rows of 14 cells: 196 cells + 14 rows + the status label + chrome ≈ 215 nodes


def grid_model() -> AppModel:
    """One app whose only screen is a grid of about 200 widgets; each button names itself in a label."""
    rows = []
    for r in range(GRID):
        cells = []
        for c in range(GRID):
            cell: dict[str, Any] = {
                "id": f"cell_{r}_{c}",
                "class": "Button" if c % 2 == 0 else "TextView",
                "text": f"{r}.{c}",
                "resourceId": f"{PACKAGE}:id/cell_{r}_{c}",
                "height": 60,
            }
            if c % 2 == 0:
                cell["onClick"] = [{"setText": {"widget": "status", "text": f"clicked {r}.{c}"}}]
            cells.append(cell)
        rows.append({"id": f"row_{r}", "orientation": "horizontal", "children": cells})
    widgets = [
        {"id": "status", "text": "nothing clicked", "resourceId": f"{PACKAGE}:id/status", "height": 60}
    ]
    app = {
        "package": PACKAGE,
        "label": "Bench",
        "startScreen": "grid",
        "screens": [{"id": "grid", "title": "Grid", "widgets": widgets + rows}],
    }
    return AppModel.from_dict({"schemaVersion": 1, "apps": [app]})


def _timed(fn: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _row(name: str, samples_ms: list[float], target_ms: float | None, unit: str = "ms") -> dict[str, Any]:
    median = statistics.median(samples_ms)
    p95 = sorted(samples_ms)[max(0, round(0.95 * len(samples_ms)) - 1)]
    return {
        "name": name,
        "unit": unit,
        "rounds": len(samples_ms),
        "median": round(median, 2),
        "p95": round(p95, 2),
        "target": target_ms,
        "ok": None if target_ms is None else median < target_ms,
    }


class _Stream:
    """JSON-RPC over one kept-alive adb `tcp:9008` stream: the device's own cost, without the
    client library's per-call extras (adbutils probes the server version on a fresh connection
    for every call and sleeps 10 ms when closing it)."""

    def __init__(self, serial: str) -> None:
        import adbutils

        self.conn = http.client.HTTPConnection("localhost", 9008, timeout=10)
        self.conn.sock = adbutils.adb.device(serial).create_connection(adbutils.Network.TCP, 9008)

    def call(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        self.conn.request("POST", "/jsonrpc/0", body, {"Content-Type": "application/json"})
        answer = json.loads(self.conn.getresponse().read())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]


def run(port: int, rounds: int) -> list[dict[str, Any]]:
    adb = os.environ.setdefault("ADBUTILS_ADB_PATH", shutil.which("adb") or "/usr/bin/adb")
    subprocess.run([adb, "start-server"], check=True, capture_output=True)
    import uiautomator2

    model = grid_model()
    started = time.perf_counter()
    emulator = Emulator(model, console_port=port)
    emulator.start()
    try:
        emulator.wait_ready()
        d = uiautomator2.connect(emulator.serial)
        ready_ms = (time.perf_counter() - started) * 1000
        results = [_row("ready: start → first uiautomator2.connect", [ready_ms], 1000)]

        d.app_start(PACKAGE)
        d(resourceId=f"{PACKAGE}:id/status").wait(timeout=5)
        cells = [(r, c) for r in range(GRID) for c in range(0, GRID, 2)]
        centres = [d(resourceId=f"{PACKAGE}:id/cell_{r}_{c}").center() for r, c in cells[:10]]
        position = iter(range(10**9))
        stream = _Stream(emulator.serial)

        def next_centre() -> tuple[int, int]:
            return centres[next(position) % len(centres)]

        # Each click lands on a button whose onClick rewrites the status label: real work each time.
        results.append(
            _row(
                "click, adb tcp:9008 stream", _timed(lambda: stream.call("click", *next_centre()), rounds), 10
            )
        )
        results.append(
            _row("click, uiautomator2 d.click(x, y)", _timed(lambda: d.click(*next_centre()), rounds), None)
        )
        nodes = d.dump_hierarchy().count("<node ")
        dump = _timed(lambda: stream.call("dumpWindowHierarchy", False, 50), rounds)
        results.append(_row(f"dump_hierarchy ({nodes} nodes), adb stream", dump, 20))
        results.append(_row("dump_hierarchy, uiautomator2 client", _timed(d.dump_hierarchy, rounds), None))

        fresh = []
        for _ in range(max(5, rounds // 5)):
            stream.call("click", *next_centre())  # change the screen so that the frame is drawn anew
            fresh.extend(_timed(d.screenshot, 1))
        results.append(_row("screenshot, changed screen (1080×2340 JPEG)", fresh, None))
        results.append(_row("screenshot, unchanged screen (cached)", _timed(d.screenshot, rounds), None))
        stream.conn.close()
        results.extend(appium_rows(emulator.serial, centres, rounds))
        return results
    finally:
        emulator.stop()


def appium_rows(serial: str, centres: list[tuple[int, int]], rounds: int) -> list[dict[str, Any]]:
    """Click and page-source round trips through a real Appium server (none when it is not installed)."""
    import tempfile

    from appium import webdriver
    from appium.options.common.base import AppiumOptions
    from appium.webdriver.common.appiumby import AppiumBy

    from device_bridge.appium_driver import session_capabilities
    from tests.appium.conftest import (
        APPIUM_DIR,
        android_home,
        appium_missing_reason,
        start_appium,
        stop_appium,
    )

    reason = appium_missing_reason()
    if reason:
        print(f"Appium rows skipped: {reason}", file=sys.stderr)
        return []
    with tempfile.TemporaryDirectory(prefix="bench-appium-") as folder:
        root = Path(folder)
        process, url = start_appium(android_home(root), APPIUM_DIR, root / "appium.log")
        try:
            options = AppiumOptions()
            options.load_capabilities(session_capabilities(serial))
            started = time.perf_counter()
            driver = webdriver.Remote(url, options=options)
            session_ms = (time.perf_counter() - started) * 1000
            try:
                position = iter(range(10**9))

                def click_gesture() -> None:
                    x, y = centres[next(position) % len(centres)]
                    driver.execute_script("mobile: clickGesture", {"x": x, "y": y})

                button = driver.find_element(AppiumBy.ID, f"{PACKAGE}:id/cell_0_0")
                nodes = driver.page_source.count("<android.")
                return [
                    _row("Appium: session start (new session → ready)", [session_ms], None),
                    _row("Appium: click, mobile: clickGesture (x, y)", _timed(click_gesture, rounds), None),
                    _row("Appium: click, element.click()", _timed(button.click, rounds), None),
                    _row(
                        f"Appium: page source ({nodes} elements)",
                        _timed(lambda: driver.page_source, rounds),
                        None,
                    ),
                ]
            finally:
                driver.quit()
        finally:
            stop_appium(process)


def print_table(results: list[dict[str, Any]]) -> None:
    width = max(len(r["name"]) for r in results)
    print(f"{'measure':<{width}}  {'median':>9}  {'p95':>9}  {'target':>8}  ok")
    for r in results:
        target = "-" if r["target"] is None else f"<{r['target']:g}"
        ok = "-" if r["ok"] is None else ("yes" if r["ok"] else "NO")
        median, p95 = f"{r['median']:.2f}{r['unit']}", f"{r['p95']:.2f}{r['unit']}"
        print(f"{r['name']:<{width}}  {median:>9}  {p95:>9}  {target:>8}  {ok}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=5584, help="even console port (adb port is +1)")
    parser.add_argument("--rounds", type=int, default=50, help="samples per measure")
    args = parser.parse_args()
    results = run(args.port, args.rounds)
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "emulator",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # other work on the machine skews the numbers
        "machine": {**machine_info(), "load_average_1m": round(os.getloadavg()[0], 2)},
        "results": results,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
