"""Golden trace cases: loading one, running it on a device, comparing with `trace.json`.

A case is a folder of `golden_traces/` (see golden_traces/README.md). Any driver can run
the cases: pass `run_case` the device to use (the simulator here; the bridge's
uiautomator2 driver against the emulator in its own test) and the clock that device
lives on. Cases with `action.http` need the local server of `golden_http_server()`.
"""

from __future__ import annotations

import difflib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from interpreter.appmodel import AppModel
from interpreter.approvals import ScenarioApprovals
from interpreter.clock import Clock, VirtualClock
from interpreter.denylist import Denylist
from interpreter.device import Device
from interpreter.engine import RunResult, run_workflow
from interpreter.scenario import load_denylist, load_json_file
from interpreter.simulator import SimulatedDevice

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden_traces"
# Every case runs with this run id, so that `{{run.id}}` renders the same on every driver.
GOLDEN_RUN_ID = "00000000-0000-4000-8000-000000000001"


@dataclass
class GoldenCase:
    name: str
    path: Path
    workflow: dict[str, Any]
    apps: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    scenario: dict[str, Any] | None = None
    denylist: Denylist = field(default_factory=Denylist)
    # Entries the server path adds to the account (POST /api/v1/denylist) before it runs the case.
    account_denylist: Denylist = field(default_factory=Denylist)
    expected: dict[str, Any] | None = None

    @property
    def uses_http(self) -> bool:
        return any(node.get("kind") == "action.http" for node in self.workflow.get("nodes", []))

    def app_model(self) -> AppModel:
        return AppModel.from_dict(self.apps)


def case_paths(root: Path = GOLDEN_DIR) -> list[Path]:
    """Every case folder (one holding a workflow.json), sorted by name."""
    return sorted(path.parent for path in root.glob("*/workflow.json"))


def load_case(path: Path) -> GoldenCase:
    """Read a case folder; `trace.json` may be missing (before `make golden-update`)."""
    inputs_file, scenario_file, trace_file = path / "inputs.json", path / "scenario.json", path / "trace.json"
    denylist_file, account_file = path / "denylist.txt", path / "account-denylist.txt"
    return GoldenCase(
        name=path.name,
        path=path,
        workflow=load_json_file(path / "workflow.json", "workflow"),
        apps=load_json_file(path / "apps.json", "app model"),
        inputs=load_json_file(inputs_file, "inputs") if inputs_file.exists() else {},
        scenario=load_json_file(scenario_file, "scenario") if scenario_file.exists() else None,
        denylist=load_denylist(denylist_file if denylist_file.exists() else None),
        account_denylist=load_denylist(account_file if account_file.exists() else None),
        expected=load_json_file(trace_file, "trace") if trace_file.exists() else None,
    )


def run_case(case: GoldenCase, device: Device, clock: Clock, http_base: str | None = None) -> RunResult:
    """Run the case's workflow on `device` as the golden rules say (fixed run id, scenario, denylist).

    Without a server, the account's entries are simply added to the case's denylist: the
    effective list is the same one the server path gives the engine."""
    inputs = dict(case.inputs)
    if http_base is not None:
        inputs["httpBase"] = http_base
    return run_workflow(
        case.workflow,
        device,
        inputs=inputs,
        run_id=GOLDEN_RUN_ID,
        clock=clock,
        denylist=case.denylist + case.account_denylist,
        approvals=ScenarioApprovals.from_json(case.scenario, source=str(case.path / "scenario.json")),
    )


def run_on_simulator(case: GoldenCase, http_base: str | None = None) -> RunResult:
    """The case on a fresh `SimulatedDevice` in virtual time."""
    clock = VirtualClock()
    return run_case(case, SimulatedDevice(case.app_model(), clock), clock, http_base)


def comparable(result: RunResult) -> dict[str, Any]:
    """What `trace.json` holds: the final status and message, and each event without times."""
    return {
        "status": result.status.value,
        "errorMessage": result.error_message,
        "events": [event.comparable() for event in result.trace],
    }


def render(data: Any) -> str:
    """The one JSON formatting of trace files (so that a diff shows content, not layout)."""
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def difference(case: GoldenCase, actual: dict[str, Any]) -> str | None:
    """A unified diff of `trace.json` against `actual`, or None when they are equal."""
    if case.expected == actual:
        return None
    expected_text = render(case.expected) if case.expected is not None else ""
    lines = difflib.unified_diff(
        expected_text.splitlines(keepends=True),
        render(actual).splitlines(keepends=True),
        fromfile=f"{case.name}/trace.json (expected)",
        tofile=f"{case.name} (this run)",
    )
    return "".join(lines) + "\n(if the change is intended: make golden-update, then review the diff)"


class _GoldenHandler(BaseHTTPRequestHandler):
    """The test server's routes: /ok, /text, /echo (the JSON body back), /delay/MS, /redirect, /status/NNN."""

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if path == "/ok":
            self._send(200, "application/json", b'{"ok": true}')
        elif path == "/text":
            self._send(200, "text/plain; charset=utf-8", b"pong")
        elif path == "/echo":
            echoed = json.loads(body) if body else None
            self._send(200, "application/json", json.dumps({"method": self.command, "json": echoed}).encode())
        elif path.startswith("/delay/") and path[len("/delay/") :].isdigit():
            time.sleep(int(path[len("/delay/") :]) / 1000)
            self._send(200, "application/json", b'{"ok": true}')
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path.startswith("/status/") and path[len("/status/") :].isdigit():
            self._send(int(path[len("/status/") :]), "text/plain; charset=utf-8", b"status as asked")
        else:
            self._send(404, "text/plain; charset=utf-8", b"no such route")

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


@contextmanager
def golden_http_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (random port) for the cases' `httpBase` input."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GoldenHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="golden-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


TOAST_ID = "android:id/message"  # a toast's text, in its own window
TOAST_WAIT_S = 5.0  # a long toast shows for 3.5 s


def reset_phone(device: Device, case: GoldenCase) -> None:
    """Ready a phone used by the case before for `case`, as one would reset a phone: every app of the
    case's model force-stopped, home pressed, and a toast still up waited out (a toast outlives its
    app's force-stop, on a phone too)."""
    for package in case.app_model().packages:
        device.stop_app(package)
    device.press_key("home")
    deadline = time.monotonic() + TOAST_WAIT_S
    while any(node.resource_id == TOAST_ID for node in device.hierarchy().walk()):
        assert time.monotonic() < deadline, f"a toast stayed on screen over {TOAST_WAIT_S} s"
        time.sleep(0.1)
