"""`phoneflow runs trigger --watch` follows a real run: the bridge runs it on the virtual phone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.bridge.server_process import ServerProcess, pair_in_state_dir, start_agent
from tests.junit_schema import assert_valid_junit

pytestmark = pytest.mark.emulator

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "capture_order.json"


def test_trigger_and_watch_a_run_on_the_phone(
    server: ServerProcess, sample_emulator: Any, tmp_path: Path
) -> None:
    serial = sample_emulator.serial
    pair_in_state_dir(server, serial, tmp_path / "bridge")
    env = {**os.environ, "PHONEFLOW_SERVER": server.url, "PHONEFLOW_TOKEN": server.account.token}

    def phoneflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "phoneflow", *args], capture_output=True, text=True, env=env, timeout=180
        )

    assert phoneflow("workflows", "push", str(EXAMPLE), "--publish").returncode == 0
    agent = start_agent(server, serial, tmp_path / "bridge")
    try:
        report = tmp_path / "junit.xml"
        watched = phoneflow(
            "runs", "trigger", "Capture order", "--device", serial, "--inputs", '{"order": "B-7"}',
            "--watch", "--timeout", "120", "--junit", str(report),
        )  # fmt: skip
    finally:
        agent.terminate()
        _, agent_err = agent.communicate(timeout=30)
    assert watched.returncode == 0, (watched.stdout, watched.stderr, agent_err)
    steps = [line.split(" (")[0] for line in watched.stdout.splitlines() if line.startswith("step ")]
    assert steps == [f"step {n} {node}" for n, node in enumerate(
        ["open", "user", "password", "sign_in", "new", "type", "save", "check"], start=1)]  # fmt: skip
    assert watched.stdout.splitlines()[-1].split(": ", 1)[1].startswith("success · 8 steps")
    suite = assert_valid_junit(report).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("9", "0")
    listed = json.loads(phoneflow("runs", "list", "--json").stdout)
    assert [run["status"] for run in listed] == ["success"]
