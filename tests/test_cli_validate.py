"""`phoneflow workflow validate`: output, --json, --denylist and exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click.testing
import typer
import typer.testing

from phoneflow.cli import app

EXAMPLE = Path(__file__).parent / "data" / "capture_order.workflow.json"


def invoke(args: list[str]) -> Any:
    """Run the root `phoneflow` command in-process (a typer app or a plain click group)."""
    if isinstance(app, typer.Typer):
        return typer.testing.CliRunner().invoke(app, args)
    return click.testing.CliRunner().invoke(app, args)


def run(*args: str | Path) -> Any:
    return invoke(["workflow", "validate", *map(str, args)])


def write(tmp_path: Path, definition: Any, name: str = "wf.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(definition) if not isinstance(definition, str) else definition)
    return path


def broken_example() -> dict[str, Any]:
    definition = json.loads(EXAMPLE.read_text())
    definition["nodes"][3]["next"] = "chek"
    return definition


def test_a_valid_workflow_exits_0() -> None:
    result = run(EXAMPLE)
    assert result.exit_code == 0, result.output
    assert result.output == f"{EXAMPLE}: valid\n"


def test_warnings_alone_still_exit_0(tmp_path: Path) -> None:
    definition = json.loads(EXAMPLE.read_text())
    definition["nodes"].append({"id": "orphan", "kind": "action.wait", "params": {"ms": 1}})
    result = run(write(tmp_path, definition))
    assert result.exit_code == 0, result.output
    assert "warning /nodes/6: node 'orphan' is never reached from start 'open'\n  hint: " in result.output
    assert result.output.rstrip().endswith("valid (1 warning)")


def test_an_invalid_workflow_prints_each_problem_with_its_hint_and_exits_1(tmp_path: Path) -> None:
    result = run(write(tmp_path, broken_example()))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "error /nodes/3/next: no node 'chek' (did you mean 'check'?)"
    assert lines[1].startswith("  hint: ")
    assert lines[-1].endswith("wf.json: invalid, 1 error (1 warning)")


def test_json_output(tmp_path: Path) -> None:
    result = run(write(tmp_path, broken_example()), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["errors"] == 1
    assert report["warnings"] == 1
    assert report["problems"][0] == {
        "pointer": "/nodes/3/next",
        "message": "no node 'chek' (did you mean 'check'?)",
        "hint": "use the id of an existing node, or add a node with id 'chek'",
        "severity": "error",
    }


def test_denylist_file(tmp_path: Path) -> None:
    denylist = write(
        tmp_path, "# banks and the shop\ncom.bank.*\ncom.example.*   # every example app\n", "deny.txt"
    )
    result = run(EXAMPLE, "--denylist", denylist)
    assert result.exit_code == 1
    assert (
        "error /nodes/0/params/package: denied: com.example.shop is on the package denylist" in result.output
    )
    assert "'com.example.*'" in result.output
    allowed = write(tmp_path, "com.bank.*\n", "bank.txt")
    assert run(EXAMPLE, "--denylist", allowed).exit_code == 0


def test_a_bad_denylist_file_exits_2_naming_the_line(tmp_path: Path) -> None:
    denylist = write(tmp_path, "com.bank.*\n\nnot a package!\n", "deny.txt")
    result = run(EXAMPLE, "--denylist", denylist)
    assert result.exit_code == 2
    assert f"denylist file {denylist}, line 3:" in result.stderr
    assert "'not a package!'" in result.stderr
    missing = run(EXAMPLE, "--denylist", tmp_path / "nope.txt")
    assert missing.exit_code == 2
    assert "cannot read denylist file" in missing.stderr


def test_unreadable_input_exits_2_saying_what_and_where(tmp_path: Path) -> None:
    missing = run(tmp_path / "missing.json")
    assert missing.exit_code == 2
    assert f"cannot read workflow file {tmp_path / 'missing.json'}: no such file" in missing.stderr

    not_json = run(write(tmp_path, '{\n  "name": "x",\n  "nodes": [,]\n}'))
    assert not_json.exit_code == 2
    assert "is not JSON: Expecting value at line 3, column 13" in not_json.stderr

    nan = run(write(tmp_path, '{"timeoutS": NaN}'))
    assert nan.exit_code == 2
    assert "at /timeoutS: NaN is not a number JSON can carry" in nan.stderr

    binary = tmp_path / "binary.json"
    binary.write_bytes(b'{"name": "\xff"}')
    assert "not UTF-8 text" in run(binary).stderr

    directory = run(tmp_path)
    assert directory.exit_code == 2
    assert "it is a directory" in directory.stderr


def test_lone_surrogates_are_printed_escaped(tmp_path: Path) -> None:
    path = write(tmp_path, '{"schemaVersion": 1, "name": "x", "start": "\\ud800", "nodes": []}')
    for extra in ([], ["--json"]):
        result = run(path, *extra)
        assert result.exit_code == 1, result.output
        assert "\\ud800" in result.output


def test_json_that_is_not_a_workflow_is_invalid_not_unreadable(tmp_path: Path) -> None:
    result = run(write(tmp_path, "[1, 2]"))
    assert result.exit_code == 1
    assert "a workflow definition must be a JSON object, not a list" in result.output


def test_help_and_usage_errors_through_the_root_command() -> None:
    group_help = invoke(["workflow", "--help"])
    assert group_help.exit_code == 0
    assert "validate" in group_help.output
    assert invoke(["workflow", "validate", "--help"]).exit_code == 0
    usage = invoke(["workflow", "validate"])
    assert usage.exit_code == 2
    assert "Missing argument" in usage.output


def test_the_installed_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "phoneflow"
    ok = subprocess.run([script, "workflow", "validate", EXAMPLE], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == f"{EXAMPLE}: valid\n"
    bad = subprocess.run(
        [script, "workflow", "validate", write(tmp_path, broken_example()), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1, bad.stderr
    assert json.loads(bad.stdout)["problems"][0]["pointer"] == "/nodes/3/next"
