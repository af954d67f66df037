"""CI reports of `phoneflow simulate`: JUnit XML valid against the Jenkins schema, the artifacts
folder, and suite mode over a folder of workflows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from interpreter.reports import ReportedRun, junit_xml
from phoneflow.cli import app
from tests.junit_schema import assert_valid_junit

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden_traces"


def simulate(*args: str | Path) -> object:
    return CliRunner().invoke(app, ["simulate", *map(str, args)])


def test_a_failed_run_is_a_valid_junit_report_with_its_failure_and_a_screenshot(tmp_path: Path) -> None:
    case = GOLDEN / "failure_ends_run"
    report, folder = tmp_path / "out" / "junit.xml", tmp_path / "artifacts"
    result = simulate(
        case / "workflow.json", "--apps", case / "apps.json", "--junit", report, "--artifacts", folder
    )
    assert result.exit_code == 1, result.output
    root = assert_valid_junit(report)
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("4", "2")
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["3 missing (action.tapByText)", "run"]
    assert "no element with text 'Archive'" in (failed[1].find("failure").get("message") or "")
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "failed"
    assert (folder / "log.txt").read_text().splitlines()[-1].startswith("failed · 3 steps · 1 failed")
    # the simulator's screen at the failed step (a JSON summary; a phone's is a PNG)
    screen = json.loads((folder / "failure-3-missing.json").read_text())
    assert "New order" in screen["texts"]


def test_skipped_and_handled_failures_and_screenshots(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    for case in ("disabled_skipped", "failed_edge_taken", "screenshot"):
        folder = tmp_path / case
        result = simulate(GOLDEN / case / "workflow.json", "--apps", GOLDEN / case / "apps.json",
                          "--junit", report, "--artifacts", folder)  # fmt: skip
        assert result.exit_code == 0, (case, result.output)
        suite = assert_valid_junit(report).find("testsuite")
        assert suite is not None
        assert suite.get("failures") == "0", case
        if case == "disabled_skipped":
            assert int(suite.get("skipped") or 0) >= 1
        if case == "failed_edge_taken":
            handled = [
                c
                for c in suite.iter("testcase")
                if "handled by the workflow" in (c.findtext("system-out") or "")
            ]
            assert len(handled) == 1
        if case == "screenshot":
            assert "texts" in json.loads((folder / "screenshot-1.json").read_text())


def test_suite_mode_runs_every_workflow_of_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "suite"
    folder.mkdir()
    shutil.copy(ROOT / "examples" / "capture_order.json", folder / "order.json")
    shutil.copy(ROOT / "examples" / "capture_order.inputs.json", folder / "order.inputs.json")
    shutil.copy(GOLDEN / "failure_ends_run" / "workflow.json", folder / "archive.json")
    (folder / "broken.json").write_text(
        json.dumps({"schemaVersion": 1, "name": "broken", "start": "x", "nodes": []})
    )
    (folder / "notes.json").write_text('{"not": "a workflow"}')
    report = tmp_path / "junit.xml"
    result = simulate(folder, "--junit", report, "--artifacts", tmp_path / "artifacts")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("FAIL archive.json: 'failure ends run' failed")
    assert lines[1].startswith("FAIL broken.json: 'broken' invalid")
    assert lines[2].startswith("ok   order.json: 'Capture order' success · 8 steps")
    assert lines[-1] == "1 of 3 workflows succeeded"
    suites = assert_valid_junit(report).findall("testsuite")
    assert [(s.get("name"), s.get("failures")) for s in suites] == [
        ("failure ends run", "2"),
        ("broken", "1"),
        ("Capture order", "0"),
    ]
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == [
        "Capture-order",
        "broken",
        "failure-ends-run",
    ]
    only_good = tmp_path / "good"
    only_good.mkdir()
    shutil.copy(folder / "order.json", only_good)
    shutil.copy(folder / "order.inputs.json", only_good)
    assert simulate(only_good).exit_code == 0
    assert simulate(tmp_path / "artifacts" / "broken").exit_code == 2  # no workflow in it


def test_text_that_xml_cannot_hold_is_still_a_valid_report(tmp_path: Path) -> None:
    run = {"id": "r", "status": "failed", "durationMs": 5, "errorMessage": "bad <xml> & \"quotes\"",
           "trace": [{"seq": 1, "nodeId": "n<1>", "kind": "action.http", "outcome": "failed",
                      "message": "ünïcode ✓ & <tags>", "durationMs": 5, "output": {}}]}  # fmt: skip
    path = tmp_path / "j.xml"
    path.write_bytes(junit_xml([ReportedRun("suite & co", "wf", run, log=["line <1>"])]))
    root = assert_valid_junit(path)
    assert root.find("testsuite/testcase/failure").get("message") == "ünïcode ✓ & <tags>"
