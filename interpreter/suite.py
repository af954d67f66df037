"""Suite mode: every workflow of a folder, each with the inputs beside it.

A folder's workflows are its `*.json` files that hold a workflow definition (an object with
`nodes`); `NAME.inputs.json` beside `NAME.json` holds that workflow's run inputs, and
`*.inputs.json`, `*.apps.json` and `*.scenario.json` files are never taken for workflows.
`phoneflow simulate FOLDER` and `phoneflow bridge exec FOLDER` run them in name order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interpreter.errors import WorkflowError
from interpreter.problems import errors_only
from interpreter.reports import ReportedRun
from interpreter.scenario import load_json_file
from interpreter.validation import validate

SIDE_FILES = (".inputs.json", ".apps.json", ".scenario.json")


@dataclass
class SuiteItem:
    """One workflow of a suite: where it is, its definition and inputs, or why it cannot run."""

    path: Path
    name: str
    definition: Any = None
    inputs: dict[str, Any] | None = None
    problem: str | None = None


def discover(folder: Path, default_inputs: dict[str, Any] | None, denylist: Any = None) -> list[SuiteItem]:
    """The workflows of `folder` in name order, each loaded, validated and given its inputs."""
    items: list[SuiteItem] = []
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(SIDE_FILES):
            continue
        try:
            definition = load_json_file(path, "workflow")
        except WorkflowError as exc:
            items.append(SuiteItem(path, path.stem, problem=str(exc)))
            continue
        if not isinstance(definition, dict) or "nodes" not in definition:
            continue  # some other JSON file: not a workflow
        name = definition.get("name") if isinstance(definition.get("name"), str) else path.stem
        item = SuiteItem(path, str(name), definition, default_inputs)
        beside = path.with_name(path.stem + ".inputs.json")
        try:
            if beside.exists():
                loaded = load_json_file(beside, "inputs")
                if not isinstance(loaded, dict):
                    raise WorkflowError(f"{beside} must hold a JSON object of run inputs")
                item.inputs = loaded
        except WorkflowError as exc:
            item.problem = str(exc)
        if item.problem is None:
            errors = errors_only(validate(definition, denylist))
            if errors:
                first = errors[0]
                more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                item.problem = (
                    f"{path} is not valid: {first.pointer or '/'}: {first.message}{more}; "
                    f"`phoneflow workflow validate {path}` lists every problem"
                )
        items.append(item)
    return items


def not_run(item: SuiteItem, suite: str) -> ReportedRun:
    """The report of a workflow that could not run (unreadable or invalid): a failed run, no steps."""
    run: dict[str, Any] = {
        "id": "",
        "status": "invalid",
        "trace": [],
        "errorMessage": item.problem,
        "durationMs": 0,
    }
    return ReportedRun(suite=suite, workflow=item.name, run=run, log=[f"not run: {item.problem}"])
