"""Benchmark the screen inspector's command channel and its reading of a hierarchy.

    .venv/bin/python bench/inspect_channel.py [--commands 30]

1. Round trip of one inspect command (POST /devices/{id}/commands, then GET …?wait=20 until done)
   with a bridge long-polling GET /devices/me/commands?wait=20 and answering at once with a real
   answer (the shop's login screen: its hierarchy and a 540 px JPEG). Two server processes on
   one SQLite file: the person and the bridge on the same process (woken at once), then on
   different processes (found at the next look, every command_poll_interval_s = 0.5 s).
   No phone: this is the channel's own cost; a phone adds its screenshot and dump.
2. `inspect_hierarchy` (every element with its selectors counted by the matcher) on the shop's
   orders screen and on a 300-element list screen.

Prints a table and writes `bench/results/inspect_channel.json`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from machine_info import machine_info

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from interpreter.appmodel import sample_apps  # noqa: E402
from interpreter.appmodel.phone import PhoneState  # noqa: E402
from interpreter.appmodel.screen import render_jpeg  # noqa: E402
from interpreter.hierarchy import Bounds, UiNode, from_android_xml, to_android_xml  # noqa: E402
from interpreter.inspection import inspect_hierarchy  # noqa: E402
from server.accounts import service as accounts  # noqa: E402
from server.accounts.models import Plan  # noqa: E402
from server.db import make_engine, make_session_factory  # noqa: E402
from server.devices import service as devices  # noqa: E402
from server.migrate import upgrade  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(db_url: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "PHONEFLOW_DATABASE_URL": db_url,
        "PHONEFLOW_START_SCHEDULER": "false",
        "PHONEFLOW_RUN_MIGRATIONS": "false",
        "PHONEFLOW_LOG_LEVEL": "WARNING",
        "PHONEFLOW_ARTIFACT_DIR": str(folder / "artifacts"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "server.app:create_app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


def _screen(package_screen: str) -> tuple[str, dict[str, Any]]:
    phone = PhoneState(sample_apps())
    phone.launch("com.example.shop")
    if package_screen == "orders":
        phone.tap(540, 700)  # Sign in
    xml = to_android_xml(phone.hierarchy())
    shot = {"contentType": "image/jpeg", "data": base64.b64encode(render_jpeg(phone, 75, 0.5)).decode()}
    return xml, shot


def _bridge(url: str, token: str, result: dict[str, Any], stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        while not stop.is_set():
            for command in client.get("/api/v1/devices/me/commands", params={"wait": 2}).json()["commands"]:
                client.post(
                    f"/api/v1/devices/me/commands/{command['id']}/result", json={"ok": True, "result": result}
                )


def _round_trips(url: str, token: str, device_id: str, count: int) -> list[float]:
    times: list[float] = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for _ in range(count):
            started = time.perf_counter()
            command = client.post(f"/api/v1/devices/{device_id}/commands", json={"kind": "inspect"}).json()
            while command["status"] in ("pending", "taken"):
                command = client.get(
                    f"/api/v1/devices/{device_id}/commands/{command['id']}", params={"wait": 20}
                ).json()
            assert command["status"] == "done", command
            assert command["inspection"]["elements"]
            times.append((time.perf_counter() - started) * 1000)
    return times


def _grid_screen(count: int) -> UiNode:
    """A screen of `count` clickable cells (10 a row), each with its text; ids shared by column."""
    root = UiNode("hierarchy", Bounds(0, 0, 1080, 2340))
    window = UiNode("android.widget.FrameLayout", Bounds(0, 0, 1080, 2340), package="com.bench.grid")
    root.children.append(window)
    for n in range(count):
        row, column = divmod(n, 10)
        window.children.append(
            UiNode(
                "android.widget.TextView",
                Bounds(column * 108, 100 + row * 70, column * 108 + 100, 160 + row * 70),
                text=f"Cell {n}",
                resource_id=f"com.bench.grid:id/col{column}",
                package="com.bench.grid",
                clickable=True,
            )
        )
    return root


def _timed(work: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=30)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db_url = f"sqlite:///{folder / 'bench.db'}"
        engine = make_engine(db_url)
        upgrade(engine)
        factory = make_session_factory(engine)
        with factory.begin() as session:
            account, account_token = accounts.create_account(session, "bench@example.com", Plan.PRO)
            facts = devices.DeviceFacts(serial="bench-1", model="Bench", android_version="14")
            device, device_token = devices.create_device(session, account.id, facts)
            device_id = device.id
        engine.dispose()
        servers = [_serve(db_url, folder), _serve(db_url, folder)]
        xml, shot = _screen("login")
        result = {
            "screenshot": shot,
            "hierarchy": xml,
            "foreground": {"package": "com.example.shop", "activity": ".LoginActivity"},
        }
        try:
            for label, person, bridge in (
                ("same process", servers[0][1], servers[0][1]),
                ("two processes", servers[0][1], servers[1][1]),
            ):
                stop = threading.Event()
                thread = threading.Thread(
                    target=_bridge, args=(bridge, device_token, result, stop), daemon=True
                )
                thread.start()
                time.sleep(0.5)  # the bridge's first poll marks it as listening
                _round_trips(person, account_token, device_id, 3)  # warm up
                times = _round_trips(person, account_token, device_id, args.commands)
                stop.set()
                thread.join(10)
                rows.append(
                    {
                        "what": f"inspect round trip, {label}",
                        "n": len(times),
                        "p50_ms": round(statistics.median(times), 1),
                        "p95_ms": round(sorted(times)[int(len(times) * 0.95) - 1], 1),
                    }
                )
        finally:
            for process, _url in servers:
                process.terminate()
                process.wait(10)

    orders_xml, _ = _screen("orders")
    orders = from_android_xml(orders_xml)
    big = _grid_screen(300)
    for label, root in (("orders screen", orders), ("300-widget grid", big)):
        elements = len(inspect_hierarchy(root)["elements"])
        median = _timed(lambda root=root: inspect_hierarchy(root), 20)
        what = f"inspect_hierarchy, {label} ({elements} elements)"
        rows.append({"what": what, "n": 20, "p50_ms": round(median, 1), "p95_ms": None})

    print(f"{'what':58} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}")
    for row in rows:
        p95 = "" if row["p95_ms"] is None else f"{row['p95_ms']:8.1f}"
        print(f"{row['what']:58} {row['n']:>4} {row['p50_ms']:8.1f} {p95:>8}")
    out = ROOT / "bench" / "results" / "inspect_channel.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": machine_info(), "rows": rows}, indent=2))
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
