"""`phoneflow runs ...` against a real server; `runs watch` follows a run that a device reports live."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from client import watch
from client.api import Api
from client.profiles import Target
from server.db import utcnow
from server.devices.models import Device
from tests.bridge.server_process import ServerProcess
from tests.client.conftest import Cli
from tests.junit_schema import assert_valid_junit
from tests.server.factories import DeviceFixture, auth

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "capture_order.json"
INPUTS = '{"order": "A-7"}'
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def _published(cli: Cli) -> str:
    pushed = cli("workflows", "push", str(EXAMPLE), "--publish", "--json")
    assert pushed.exit_code == 0, pushed.output
    return str(json.loads(pushed.stdout)["workflowId"])


def test_trigger_list_show_cancel_export_retry(cli: Cli, served: ServerProcess, tmp_path: Path) -> None:
    device = served.device("emulator-5554")
    workflow_id = _published(cli)
    triggered = cli("runs", "trigger", "Capture order", "--device", "emulator-5554", "--inputs", INPUTS)
    assert triggered.exit_code == 0, triggered.output
    run_id = triggered.stdout.strip()
    assert f"phoneflow runs watch {run_id}" in triggered.stderr
    assert "offline" not in triggered.stderr  # paired a moment ago: seen

    listed = json.loads(cli("runs", "list", "--workflow", workflow_id, "--json").stdout)
    assert [(r["id"], r["status"], r["inputs"]) for r in listed] == [(run_id, "queued", {"order": "A-7"})]
    table = cli("runs", "list", "--device", device.id)
    assert run_id in table.stdout
    assert "Capture order" in table.stdout
    assert cli("runs", "list", "--status", "success", "--json").stdout.strip() == "[]"
    shown = cli("runs", "show", run_id, "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["trace"] == []

    cancelled = cli("runs", "cancel", run_id)
    assert cancelled.exit_code == 0, cancelled.output
    assert f"run {run_id} cancelled" in cancelled.stdout
    assert cli("runs", "show", run_id).exit_code == 3  # how the run ended

    exported = tmp_path / "runs.json"
    assert cli("runs", "export", "--days", "7", "--output", str(exported)).exit_code == 0
    assert [r["id"] for r in json.loads(exported.read_text())] == [run_id]
    too_far = cli("runs", "export", "--days", "365")
    assert too_far.exit_code == 7
    assert "exports at most 30 days" in too_far.stderr

    retry = cli("runs", "retry", run_id)
    assert retry.exit_code == 0, retry.output
    retry_id = retry.stdout.strip()
    again = json.loads(cli("runs", "show", retry_id, "--json").stdout)
    assert (again["status"], again["trigger"], again["retryOf"]) == ("queued", "retry", run_id)
    assert (again["deviceId"], again["inputs"]) == (device.id, {"order": "A-7"})
    assert json.loads(cli("runs", "show", run_id, "--json").stdout)["retriedBy"] == [retry_id]
    not_ended = cli("runs", "retry", retry_id)
    assert not_ended.exit_code == 7
    assert "has not ended (queued)" in not_ended.stderr
    # a run's first characters, as the dashboard shows it ("Run 1a2b3c4d"), name it too
    assert cli("runs", "cancel", retry_id[:8].upper()).exit_code == 0
    assert json.loads(cli("runs", "show", run_id[:8], "--json").stdout)["id"] == run_id

    missing = cli("runs", "show", "00000000-0000-4000-8000-000000000000")
    assert missing.exit_code == 6
    unknown_prefix = cli("runs", "show", "0000000z")
    assert unknown_prefix.exit_code == 6
    assert "no run whose id starts with '0000000z'" in unknown_prefix.stderr
    too_short = cli("runs", "show", run_id[:3])
    assert too_short.exit_code == 2
    assert "first 4+ characters" in too_short.stderr
    bad_inputs = cli("runs", "trigger", workflow_id, "--device", device.id, "--inputs", '{"order": ')
    assert bad_inputs.exit_code == 2
    assert "--inputs is not JSON" in bad_inputs.stderr
    refused = cli("runs", "trigger", workflow_id, "--device", device.id, "--inputs", '{"order": ""}')
    assert refused.exit_code == 7
    assert "/order" in refused.stderr


class Watcher:
    """`phoneflow runs watch` as a process; its output read line by line as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "phoneflow", *args],
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None or self._reader.is_alive(), (text, self.lines, self.stderr())
            assert time.monotonic() < deadline, f"never printed {text!r}: {self.lines} {self.stderr()}"
            time.sleep(0.05)

    def stderr(self) -> str:
        return self.errors

    errors = ""

    def finish(self) -> int:
        """Its exit code, once it ended (killed after 60 s); its pipes closed."""
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self._reader.join(10)
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self.errors = self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return code


@pytest.fixture
def watcher_env(cli: Cli) -> dict[str, str]:
    return {k: v for k, v in cli.env.items() if v is not None}


def test_watch_sees_an_end_that_came_before_its_stream_listened(
    cli: Cli, served: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run ends between the watcher's first read and its stream's subscription: no event will
    come (the server pings every 15 s, so no read times out); the read after subscribing must end it."""
    device = served.device("emulator-5554")
    workflow_id = _published(cli)
    run_id = cli("runs", "trigger", workflow_id, "--device", device.id, "--inputs", INPUTS).stdout.strip()
    opening = watch.connect_sse

    def cancelled_then_open(*args: Any, **kwargs: Any) -> Any:
        assert cli("runs", "cancel", run_id).exit_code == 0
        return opening(*args, **kwargs)

    monkeypatch.setattr(watch, "connect_sse", cancelled_then_open)
    seen: list[str] = []
    started = time.monotonic()
    with Api(Target(served.url, served.account.token, "test", "test")) as api:
        run = watch.follow(api, run_id, lambda changed: seen.append(changed["status"]), timeout_s=30)
    assert run["status"] == "cancelled"
    assert seen == ["queued", "cancelled"]
    assert time.monotonic() - started < 10  # not a read timeout's wait (the old code: 20 s)


def _event(seq: int, node: str, kind: str, outcome: str = "ok", message: str | None = None) -> dict[str, Any]:
    return {"seq": seq, "nodeId": node, "kind": kind, "outcome": outcome, "message": message,
            "startedAt": f"2026-11-23T10:00:0{seq}.000Z", "durationMs": 100 * seq, "attempts": 1,
            "output": {}}  # fmt: skip


def _report(served: ServerProcess, device: DeviceFixture, run: dict[str, Any], **fields: Any) -> None:
    body = {"id": run["id"], "workflowId": run["workflowId"], "workflowVersionId": run["workflowVersionId"],
            "deviceId": device.id, "trigger": "api", "inputs": run["inputs"],
            "startedAt": "2026-11-23T10:00:00.000Z", **fields}  # fmt: skip
    answer = httpx.post(f"{served.url}/api/v1/runs.report", headers=auth(device.token), json={"runs": [body]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["runs"][0]["result"] == "stored", answer.text


def test_trigger_on_a_phone_no_bridge_serves_says_the_run_waits(cli: Cli, served: ServerProcess) -> None:
    device = served.device("emulator-5554")
    with served.db.session_factory.begin() as session:
        session.get(Device, device.id).last_seen_at = utcnow() - timedelta(minutes=5)  # type: ignore[union-attr]
    _published(cli)
    triggered = cli("runs", "trigger", "Capture order", "--device", "emulator-5554", "--inputs", INPUTS)
    assert triggered.exit_code == 0, triggered.output
    assert "is offline (its bridge last reported at" in triggered.stderr
    assert f"waits in the queue until `phoneflow bridge run --server {served.url}` serves" in triggered.stderr


def test_trigger_of_a_workflow_never_published_names_the_command(
    cli: Cli, served: ServerProcess, tmp_path: Path
) -> None:
    served.device("emulator-5554")
    draft = tmp_path / "draft.json"
    draft.write_text(EXAMPLE.read_text().replace('"Capture order"', '"Draft order"'))
    assert cli("workflows", "push", str(draft)).exit_code == 0
    triggered = cli("runs", "trigger", "Draft order", "--device", "emulator-5554", "--inputs", INPUTS)
    assert triggered.exit_code == 7
    assert "'Draft order' has no published version" in triggered.stderr
    assert "`phoneflow workflows publish " in triggered.stderr
    again = cli("workflows", "push", str(draft), "--publish")
    assert again.stdout.startswith("unchanged: 'Draft order' v1 (")
    assert again.stdout.rstrip().endswith(", published")


@pytest.mark.parametrize("ending", ["success", "failed"])
def test_watch_follows_a_run_live_and_exits_with_how_it_ended(
    cli: Cli, served: ServerProcess, watcher_env: dict[str, str], ending: str, tmp_path: Path
) -> None:
    device = served.device("emulator-5554")
    workflow_id = _published(cli)
    run_id = cli("runs", "trigger", workflow_id, "--device", device.id, "--inputs", INPUTS).stdout.strip()
    report, folder = tmp_path / "junit.xml", tmp_path / "artifacts"
    watcher = Watcher(
        ["runs", "watch", run_id, "--junit", str(report), "--artifacts", str(folder)], watcher_env
    )
    try:
        watcher.wait_for(f"run {run_id}: queued")
        run = httpx.post(f"{served.url}/api/v1/devices/me/claim", headers=auth(device.token)).json()["run"]
        watcher.wait_for(f"run {run_id}: running")
        trace = [_event(1, "open", "action.launchApp")]
        _report(served, device, run, status="running", trace=trace)
        watcher.wait_for("step 1 open (action.launchApp) ok 100 ms")
        uploaded = httpx.post(
            f"{served.url}/api/v1/runs/{run_id}/artifacts", headers=auth(device.token),
            files={"file": ("screen.png", PNG, "image/png")}, data={"name": "screenshot-1.png"},
        )  # fmt: skip
        assert uploaded.status_code == 201, uploaded.text
        trace.append(_event(2, "user", "action.typeText"))
        _report(served, device, run, status="running", trace=trace)
        watcher.wait_for("step 2 user (action.typeText) ok 200 ms")
        outcome = "ok" if ending == "success" else "failed"
        trace.append(
            _event(3, "sign_in", "action.tapByText", outcome, None if outcome == "ok" else "no 'Sign in'")
        )
        _report(
            served, device, run, status=ending, trace=trace, endedAt="2026-11-23T10:00:04.000Z",
            durationMs=4000, nSteps=3, nFailed=0 if ending == "success" else 1, nRetries=0,
            errorMessage=None if ending == "success" else "no 'Sign in' on the screen",
        )  # fmt: skip
    finally:
        code = watcher.finish()
    assert code == (0 if ending == "success" else 1), (watcher.lines, watcher.stderr())
    assert watcher.lines[-1].startswith(f"run {run_id}: {ending} · 3 steps")
    steps = [line.split(" (")[0] for line in watcher.lines if line.startswith("step ")]
    assert steps == ["step 1 open", "step 2 user", "step 3 sign_in"]
    suite = assert_valid_junit(report).find("testsuite")
    assert suite is not None
    assert suite.get("name") == f"Capture order on Pixel 7 ({device.serial})"  # the device's name
    assert suite.get("failures") == ("0" if ending == "success" else "2")
    assert (folder / "screenshot-1.png").read_bytes() == PNG
    assert json.loads((folder / "run.json").read_text())["status"] == ending


def test_watch_of_a_cancelled_run_and_json(
    cli: Cli, served: ServerProcess, watcher_env: dict[str, str]
) -> None:
    device = served.device("emulator-5554")
    workflow_id = _published(cli)
    run_id = cli("runs", "trigger", workflow_id, "--device", device.id, "--inputs", INPUTS).stdout.strip()
    watcher = Watcher(["runs", "watch", run_id, "--json"], watcher_env)
    time.sleep(0.5)  # whether the watcher is connected yet or not, it must see the end
    assert cli("runs", "cancel", run_id).exit_code == 0
    assert watcher.finish() == 3
    assert json.loads("\n".join(watcher.lines))["status"] == "cancelled"
    timed = cli(
        "runs", "trigger", workflow_id, "--device", device.id, "--inputs", INPUTS, "--watch", "--timeout", "1"
    )
    assert timed.exit_code == 4
    assert "still queued after the --timeout" in timed.stderr


def test_log_prints_the_engines_decisions_and_the_variables(cli: Cli, served: ServerProcess) -> None:
    from interpreter.appmodel import sample_apps
    from interpreter.clock import VirtualClock
    from interpreter.engine import run_workflow
    from interpreter.simulator import SimulatedDevice

    device = served.device("emulator-5554")
    workflow_id = _published(cli)
    run_id = cli("runs", "trigger", workflow_id, "--device", device.id, "--inputs", INPUTS).stdout.strip()
    run = httpx.post(f"{served.url}/api/v1/devices/me/claim", headers=auth(device.token)).json()["run"]
    assert run["id"] == run_id
    clock = VirtualClock()
    result = run_workflow(
        json.loads(EXAMPLE.read_text()), SimulatedDevice(sample_apps(), clock),
        inputs=json.loads(INPUTS), clock=clock, run_id=run_id,
    ).to_json()  # fmt: skip
    assert result["status"] == "success", result["errorMessage"]
    result.pop("id")
    result.pop("startedAt")
    _report(served, device, run, **result)

    shown = cli("runs", "log", run_id)
    assert shown.exit_code == 0, shown.output
    assert "execution log" in shown.stdout
    assert "the run ended success" in shown.stdout
    assert "ok → user" in shown.stdout
    as_json = json.loads(cli("runs", "log", run_id, "--json").stdout)
    assert as_json["source"] == "engine"
    assert as_json["entries"] == result["log"]
