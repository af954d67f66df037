"""Files the CLIs read are JSON as JSON means it: no NaN, no infinity, no key twice; and validation
refuses what would only fail at run time (control.if without params, a blank expression)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from interpreter.strict_json import StrictJsonError, loads_strict
from interpreter.validation import validate

WORKFLOW = {
    "schemaVersion": 1,
    "name": "x",
    "start": "a",
    "nodes": [{"id": "a", "kind": "control.setVar", "params": {"name": "n", "value": 1}}],
}


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ('{"a": 1, "b": {"c": 1, "c": 2}}', "at /b/c:", "appears twice"),
        ('{"timeoutS": 1e309}', "at /timeoutS:", "1e309 is not a number JSON can carry"),
        ('{"nodes": [1, NaN]}', "at /nodes/1:", "NaN is not a number JSON can carry"),
        ('{"x": -Infinity}', "at /x:", "-Infinity is not a number"),
    ],
)
def test_strict_json_names_the_pointer(text: str, where: str, words: str) -> None:
    with pytest.raises(StrictJsonError) as caught:
        loads_strict(text)
    assert where in str(caught.value)
    assert words in str(caught.value)
    assert loads_strict('{"a": [1.5, 2, {"b": null}]}') == {"a": [1.5, 2, {"b": None}]}


@pytest.mark.parametrize("command", ["validate", "simulate"])
def test_validate_and_simulate_refuse_the_same_files(tmp_path: Path, command: str) -> None:
    text = json.dumps(WORKFLOW).replace('"value": 1', '"value": NaN')
    path = tmp_path / "w.json"
    path.write_text(text)
    args = ["workflow", "validate", str(path)] if command == "validate" else ["simulate", str(path)]
    proc = subprocess.run(
        [sys.executable, "-m", "phoneflow", *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "at /nodes/0/params/value: NaN is not a number JSON can carry" in proc.stderr


def test_control_if_without_params_or_with_a_blank_expression_is_refused() -> None:
    bare = {**WORKFLOW, "nodes": [{"id": "a", "kind": "control.if"}]}
    (problem,) = validate(bare)
    assert (problem.pointer, problem.message) == (
        "/nodes/0",
        "control.if has no params, so it has nothing to decide on",
    )
    blank = {**WORKFLOW, "nodes": [{"id": "a", "kind": "control.if", "params": {"expr": "  \t"}}]}
    (problem,) = validate(blank)
    assert (problem.pointer, problem.message) == ("/nodes/0/params/expr", "the expression is only whitespace")


def test_set_var_may_have_a_failed_edge() -> None:
    nodes = [
        {"id": "a", "kind": "control.setVar", "params": {"name": "n", "value": "{{inputs.x}}"},
         "next": {"ok": "b", "failed": "b"}},
        {"id": "b", "kind": "control.fail", "params": {"message": "no"}},
    ]  # fmt: skip
    assert validate({**WORKFLOW, "nodes": nodes}) == []
