"""`phoneflow bridge exec --driver appium`: a workflow on the virtual phone through a real Appium server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.appium.conftest import free_tcp_port, start_emulator

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(180)]

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "capture_order.json"


def bridge(
    *args: str, state_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "device_bridge", *args, "--state-dir", str(state_dir)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=150, env={**os.environ, **(env or {})}
    )


def test_exec_runs_a_workflow_through_appium(appium_url: str, tmp_path: Path) -> None:
    emu: Any = start_emulator()
    try:
        done = bridge(
            "exec", str(WORKFLOW), "--serial", emu.serial, "--inputs", '{"order": "A-17"}', "--json",
            "--driver", "appium", "--appium-url", appium_url,
            "--appium-capabilities", '{"appium:newCommandTimeout": 60}',
            state_dir=tmp_path,
        )  # fmt: skip
    finally:
        emu.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads(done.stdout)
    assert run["status"] == "success"
    assert [event["outcome"] for event in run["trace"]] == ["ok"] * len(run["trace"])


def test_exec_without_a_server_says_what_to_do(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_tcp_port()}"
    # The driver comes from the environment here, as PHONEFLOW_BRIDGE_DRIVER sets it.
    done = bridge(
        "exec", str(WORKFLOW), "--serial", "emulator-5554", "--inputs", '{"order": "A-17"}',
        "--appium-url", url, state_dir=tmp_path, env={"PHONEFLOW_BRIDGE_DRIVER": "appium"},
    )  # fmt: skip
    assert done.returncode == 2
    assert f"cannot reach the Appium server at {url}" in done.stderr
    assert "appium driver install uiautomator2" in done.stderr


def test_a_driver_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    done = bridge("exec", str(WORKFLOW), "--serial", "x", "--driver", "selenium", state_dir=tmp_path)
    assert done.returncode == 2
    assert "use uiautomator2 or appium" in done.stderr
    bad = bridge("exec", str(WORKFLOW), "--serial", "x", "--appium-capabilities", "[1]", state_dir=tmp_path)
    assert bad.returncode == 2
    assert "must be a JSON object" in bad.stderr
