"""`phoneflow bridge exec` on the virtual phone: each step as it happens, JUnit and artifacts, and
suite mode over a folder on two phones at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.bridge.conftest import start_emulator
from tests.junit_schema import assert_valid_junit

pytestmark = pytest.mark.emulator

SHOP = "com.example.shop"
OPEN = {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP, "stopFirst": True}}
SLOW: dict[str, Any] = {
    "schemaVersion": 1, "name": "Open slowly", "targetPackages": [SHOP], "start": "open",
    "nodes": [
        {**OPEN, "next": "pause"},
        {"id": "pause", "kind": "action.wait", "params": {"ms": 1500}, "next": "sign_in"},
        {"id": "sign_in", "kind": "action.tapByText", "params": {"text": "Sign in"}},
    ],
}  # fmt: skip
MISSING: dict[str, Any] = {
    "schemaVersion": 1, "name": "Tap what is not there", "targetPackages": [SHOP], "start": "open",
    "nodes": [
        {**OPEN, "next": "archive"},
        {"id": "archive", "kind": "action.tapByText", "params": {"text": "Archive", "timeoutMs": 300}},
    ],
}  # fmt: skip


def exec_command(*args: str | Path, state_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "phoneflow",
        "bridge",
        "exec",
        *map(str, args),
        "--state-dir",
        str(state_dir),
    ]


def test_each_step_is_shown_as_it_happens(sample_emulator: Any, tmp_path: Path) -> None:
    workflow = tmp_path / "slow.json"
    workflow.write_text(json.dumps(SLOW))
    proc = subprocess.Popen(
        exec_command(workflow, "--serial", sample_emulator.serial, state_dir=tmp_path / "state"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.stdout is not None
    arrivals: list[tuple[float, str]] = []
    for line in proc.stdout:
        arrivals.append((time.monotonic(), line.rstrip("\n")))
    ended = time.monotonic()
    assert proc.wait(60) == 0, (arrivals, proc.stderr.read() if proc.stderr else "")
    proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()
    lines = [text for _, text in arrivals]
    assert lines[0].startswith("step 1 open (action.launchApp) ok")
    assert lines[1].startswith("step 2 pause (action.wait) ok")
    assert lines[-1].startswith("success · 3 steps · 0 failed")
    first_step_at = arrivals[0][0]
    assert ended - first_step_at > 1.2, "the first step was printed only at the end, not as it happened"


def test_junit_and_artifacts_of_a_failed_run(sample_emulator: Any, tmp_path: Path) -> None:
    workflow = tmp_path / "missing.json"
    workflow.write_text(json.dumps(MISSING))
    report, folder = tmp_path / "junit.xml", tmp_path / "artifacts"
    result = subprocess.run(
        exec_command(workflow, "--serial", sample_emulator.serial, "--junit", report, "--artifacts", folder,
                     state_dir=tmp_path / "state"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    suite = assert_valid_junit(report).find("testsuite")
    assert suite is not None
    assert suite.get("name") == f"Tap what is not there on {sample_emulator.serial}"
    assert suite.get("failures") == "2"
    assert (folder / "failure-2-archive.png").read_bytes().startswith(b"\x89PNG")
    assert "<hierarchy" in (folder / "failure-2-archive-hierarchy.xml").read_text()
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"
    assert "step 2 archive (action.tapByText) failed" in (folder / "log.txt").read_text()


def test_suite_mode_runs_a_folder_on_two_phones(sample_emulator: Any, tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "missing.json").write_text(json.dumps(MISSING))
    (suite / "slow.json").write_text(json.dumps(SLOW))
    second: Any = start_emulator(None)
    try:
        serials = [sample_emulator.serial, second.serial]
        report = tmp_path / "junit.xml"
        result = subprocess.run(
            exec_command(suite, "--serial", serials[0], "--serial", serials[1], "--junit", report,
                         "--artifacts", tmp_path / "artifacts", state_dir=tmp_path / "state"),
            capture_output=True, text=True, timeout=180, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
    finally:
        second.stop()
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[-1] == "2 of 4 runs succeeded"
    for serial in serials:
        assert f"[{serial}] step 1 open (action.launchApp) ok" in result.stdout
    suites = assert_valid_junit(report).findall("testsuite")
    names = sorted((s.get("name"), s.get("failures")) for s in suites)
    assert names == sorted(
        [(f"Tap what is not there on {s}", "2") for s in serials]
        + [(f"Open slowly on {s}", "0") for s in serials]
    )
    assert len(list((tmp_path / "artifacts").iterdir())) == 4


def test_an_approval_nobody_can_answer_is_announced_and_problems_come_with_hints(
    sample_emulator: Any, tmp_path: Path
) -> None:
    ask = {
        "schemaVersion": 1, "name": "Ask first", "start": "ask",
        "nodes": [{"id": "ask", "kind": "control.approval", "params": {"message": "go?", "timeoutS": 1}}],
    }  # fmt: skip
    workflow = tmp_path / "ask.json"
    workflow.write_text(json.dumps(ask))
    result = subprocess.run(
        exec_command(workflow, "--serial", sample_emulator.serial, state_dir=tmp_path / "state"),
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "400"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "nobody can answer approval 'ask' here" in result.stderr
    assert "waits its whole timeoutS (1 s) and times out; give its answer with --scenario" in result.stderr
    answers = tmp_path / "scenario.json"
    answers.write_text(json.dumps({"approvals": {"ask": {"decision": "approved", "by": "ann"}}}))
    answered = subprocess.run(
        exec_command(workflow, "--serial", sample_emulator.serial, "--scenario", answers,
                     state_dir=tmp_path / "state"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert answered.returncode == 0, answered.stderr
    assert "nobody can answer" not in answered.stderr
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**ask, "start": "nope"}))
    refused = subprocess.run(
        exec_command(broken, "--serial", sample_emulator.serial, state_dir=tmp_path / "state"),
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "400"},
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "error /start:" in refused.stderr
    assert "  hint: " in refused.stderr
