"""`phoneflow simulate`: exit codes, the table, the JSON, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interpreter.appmodel import sample_apps_path
from interpreter.simulate_cli import simulate_app

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden_traces"
PHONEFLOW = Path(sys.executable).parent / "phoneflow"
APPS = str(sample_apps_path())


def invoke(*args: str):
    return CliRunner().invoke(simulate_app, list(args))


def test_the_installed_command_runs_a_workflow_and_exits_0() -> None:
    case = GOLDEN / "plain_success"
    proc = subprocess.run(
        [
            str(PHONEFLOW),
            "simulate",
            str(case / "workflow.json"),
            "--apps",
            APPS,
            "--inputs",
            '{"order": "Z-1"}',
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "action.waitForText" in proc.stdout
    assert "success · 6 steps · 0 failed · 0 retries" in proc.stdout


def test_the_installed_command_prints_run_json_and_exits_1_on_failure() -> None:
    case = GOLDEN / "failure_ends_run"
    proc = subprocess.run(
        [
            str(PHONEFLOW),
            "simulate",
            str(case / "workflow.json"),
            "--apps",
            str(case / "apps.json"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    run = json.loads(proc.stdout)
    assert run["status"] == "failed"
    assert run["errorMessage"].startswith(
        "step 'missing' (action.tapByText): no element with text 'Archive' on screen;"
    )
    assert run["nSteps"] == 3
    assert run["nFailed"] == 1
    # a 300 ms wait: looks of 1 ms (interpreter/device_costs.py) every 100 ms of the clock, the last at
    # 300 ms, then a look at the app and the activity in front (2 x 22 ms) for the message
    assert run["trace"][2]["durationMs"] == 345
    # The execution log: the wait's looks as one entry, then the failed step and why the run ends.
    (polls,) = [e for e in run["log"] if e["kind"] == "wait-poll"]
    assert (polls["nodeId"], polls["count"]) == ("missing", 4)
    assert [e["kind"] for e in run["log"]][-3:] == ["step", "edge", "end"]
    assert "no 'failed' edge" in run["log"][-2]["text"]


def test_scenario_answers_approvals() -> None:
    case = GOLDEN / "approval_rejected"
    result = invoke(
        str(case / "workflow.json"),
        "--apps",
        APPS,
        "--inputs",
        str(case / "inputs.json"),
        "--scenario",
        str(case / "scenario.json"),
        "--json",
    )
    assert result.exit_code == 1
    run = json.loads(result.stdout)
    assert run["trace"][0]["message"] == "rejected by bob@example.com: not today"
    assert run["inputs"] == {"order": "A-7"}


def test_invalid_workflow_prints_problems_and_exits_2(tmp_path: Path) -> None:
    workflow = {"schemaVersion": 1, "name": "x", "start": "a", "nodes": [{"id": "a", "kind": "action.nope"}]}
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(workflow))
    result = invoke(str(path), "--apps", APPS)
    assert result.exit_code == 2
    assert "/nodes/0/kind" in result.stderr
    assert "the workflow is not valid" in result.stderr


def test_the_denylist_file_is_enforced_by_validation() -> None:
    case = GOLDEN / "denylist_at_launch"
    result = invoke(str(case / "workflow.json"), "--apps", APPS, "--denylist", str(case / "denylist.txt"))
    assert result.exit_code == 2
    assert "denied: com.bank.app is on the package denylist" in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["missing.json", "--apps", APPS], "workflow file missing.json does not exist"),
        (
            [str(GOLDEN / "plain_success" / "workflow.json"), "--apps", "nope.json"],
            "app model file nope.json",
        ),
        (
            [str(GOLDEN / "plain_success" / "workflow.json"), "--apps", APPS, "--inputs", "{bad"],
            "not valid JSON",
        ),
        (
            [str(GOLDEN / "plain_success" / "workflow.json"), "--apps", APPS, "--inputs", "[1]"],
            "must be a JSON object",
        ),
    ],
)
def test_unreadable_input_exits_2(args: list[str], words: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert words in result.stderr


def test_a_bad_app_model_exits_2(tmp_path: Path) -> None:
    apps = tmp_path / "apps.json"
    apps.write_text(json.dumps({"schemaVersion": 1, "apps": [{"package": "x"}]}))
    result = invoke(str(GOLDEN / "plain_success" / "workflow.json"), "--apps", str(apps))
    assert result.exit_code == 2
    assert f"app model file {apps}" in result.stderr


def test_inputs_that_do_not_fit_fail_the_run(tmp_path: Path) -> None:
    result = invoke(
        str(GOLDEN / "plain_success" / "workflow.json"), "--apps", APPS, "--inputs", '{"order": 5}'
    )
    assert result.exit_code == 1
    assert "inputs do not match the workflow's inputs schema at /order" in result.stdout


def test_without_apps_the_sample_apps_are_used_and_said() -> None:
    result = invoke(str(GOLDEN / "plain_success" / "workflow.json"), "--inputs", '{"order": "Z-1"}')
    assert result.exit_code == 0, result.output
    assert f"apps: the sample apps ({APPS}); --apps FILE for your own" in result.stderr
    assert "success · 6 steps" in result.stdout
