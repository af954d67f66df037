"""A run's execution log read from golden cases' workflows and traces (runs whose bridge sent no
engine log): edges and why, conditions, retries, variables, the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from server.runs.exec_log import execution_log

CASES = Path(__file__).parent.parent.parent / "golden_traces"


def case(name: str) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    definition = json.loads((CASES / name / "workflow.json").read_text())
    expected = json.loads((CASES / name / "trace.json").read_text())
    trace = [{"seq": i, "durationMs": 10, **e} for i, e in enumerate(expected["events"], start=1)]
    return definition, trace, expected


def lines(log: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(entry["kind"], entry["text"]) for entry in log]


def test_conditions_their_values_the_edges_taken_and_the_variables_set() -> None:
    definition, trace, expected = case("cel_branch_true")
    log = lines(execution_log(definition, trace, expected["status"], expected["errorMessage"]))
    assert ("condition", "inputs.count > 2 was true") in log
    assert ("edge", "true → many") in log
    assert ("var-set", 'vars.size = "many"') in log
    assert ("condition", "vars.size == 'many' was true") in log
    assert ("var-set", 'vars.done = "{{vars.size}} items"') in log  # as written: the trace keeps no values
    assert log[-1] == ("end", "the run ended success")
    # In order: each step's entries, then the edge to the next.
    whats = [what for what, _ in log]
    assert whats[:3] == ["step", "condition", "edge"]


def test_retries_and_a_failure_that_ends_the_run() -> None:
    definition, trace, expected = case("retry_second_attempt")
    log = lines(execution_log(definition, trace, expected["status"]))
    assert ("retry", "tried 2 times (retry max 2, 3000 ms apart)") in log
    definition, trace, expected = case("failed_edge_taken")
    log = lines(execution_log(definition, trace, expected["status"], expected["errorMessage"]))
    failed = [text for what, text in log if what == "edge" and "failed" in text]
    assert failed
    assert failed[0].endswith("(failed, the workflow's failed edge)")
    assert log[-1][0] == "end"


def test_the_entries_have_the_engine_logs_shape() -> None:
    definition, trace, expected = case("cel_branch_true")
    log = execution_log(definition, trace, expected["status"])
    assert [entry["seq"] for entry in log] == list(range(1, len(log) + 1))
    assert all(set(entry) == {"seq", "atMs", "step", "nodeId", "kind", "text", "values"} for entry in log)
    assert log[0]["step"] == 1
    var = next(entry for entry in log if entry["kind"] == "var-set")
    assert var["values"] == {"name": "size", "value": "many"}
    assert log[-1]["step"] is None
