"""`phoneflow simulate`: run a workflow (or every workflow of a folder) on the simulator.

Exit codes: 0 the run succeeded (suite: every run did), 1 it did not (failed, timeout; suite:
one did not, or a workflow is invalid), 2 the input could not be used (a file is missing or
not JSON, the workflow or the app model is not valid).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from interpreter.appmodel import AppModel, sample_apps_path
from interpreter.clock import VirtualClock
from interpreter.device import Artifact
from interpreter.engine import RunResult, run_workflow
from interpreter.errors import AppModelError, WorkflowError
from interpreter.reports import (
    FailureShots,
    ReportedRun,
    safe_name,
    step_line,
    summary_line,
    write_artifacts,
    write_junit,
)
from interpreter.scenario import load_denylist, load_json_file, load_scenario, parse_inputs
from interpreter.simulator import SimulatedDevice
from interpreter.suite import discover, not_run
from interpreter.trace import RunStatus

simulate_app = typer.Typer(add_completion=False, help="Run a workflow on the simulator and print its trace.")

EXIT_SUCCESS = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2

_OUTCOME_STYLES = {"ok": "green", "skipped": "yellow", "failed": "bold red"}
_STATUS_STYLES = {RunStatus.SUCCESS: "bold green", RunStatus.TIMEOUT: "bold yellow"}


@simulate_app.command()
def simulate(
    file: Annotated[
        Path,
        typer.Argument(
            help="The workflow definition (JSON), or a folder: every workflow in it (suite mode).",
            show_default=False,
        ),
    ],
    apps: Annotated[
        Path | None,
        typer.Option(
            "--apps",
            help="The app model the simulated phone starts with (JSON; default: the sample apps).",
            show_default=False,
        ),
    ] = None,
    inputs: Annotated[
        str | None,
        typer.Option(
            "--inputs",
            help='Run inputs: JSON text such as \'{"order": "A-1"}\' or a file (suite mode: for workflows '
            "without a NAME.inputs.json beside them).",
        ),
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="How approvals are answered (scenario.json).")
    ] = None,
    denylist: Annotated[
        Path | None, typer.Option("--denylist", help="Package denylist: one name or glob a line.")
    ] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write a JUnit XML report (one testsuite per workflow).")
    ] = None,
    artifacts: Annotated[
        Path | None,
        typer.Option("--artifacts", help="Keep each run's trace, log and screenshots in this folder."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run (suite: the runs) as JSON.")] = False,
) -> None:
    """Run FILE on a simulated phone (virtual time: waits cost nothing) and print the trace."""
    out = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    try:
        if apps is None:
            apps = sample_apps_path()
            err.print(f"apps: the sample apps ({apps}); --apps FILE for your own", highlight=False)
        model = _load_apps(apps)
        run_inputs = parse_inputs(inputs)
        gate = load_scenario(scenario)
        packages_denied = load_denylist(denylist)
        if file.is_dir():
            raise SystemExit(
                _suite(file, model, run_inputs, gate, packages_denied, junit, artifacts, as_json, out, err)
            )
        definition = load_json_file(file, "workflow")
    except (WorkflowError, AppModelError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    if not _valid(definition, packages_denied, err):
        raise SystemExit(EXIT_BAD_INPUT)
    result, shots = _run(definition, model, run_inputs, gate, packages_denied)
    if as_json:
        out.out(json.dumps(result.to_json(), indent=2, ensure_ascii=False), highlight=False)
    else:
        _print_table(out, definition, result)
    name = str(definition.get("name") or file.stem)
    reported = ReportedRun(name, name, result.to_json(), [*result.artifacts, *shots])
    _write_reports([reported], junit, artifacts, single=True, err=err)
    # SystemExit, not typer.Exit: `phoneflow` mounts this command under a plain click group,
    # which does not know typer's own exit exception.
    raise SystemExit(EXIT_SUCCESS if result.status is RunStatus.SUCCESS else EXIT_RUN_FAILED)


def _run(
    definition: Any, model: AppModel, run_inputs: Any, gate: Any, packages_denied: Any
) -> tuple[RunResult, list[Artifact]]:
    clock = VirtualClock()
    device = SimulatedDevice(model, clock)
    shots = FailureShots(device)
    result = run_workflow(
        definition,
        device,
        inputs=run_inputs,
        clock=clock,
        denylist=packages_denied,
        approvals=gate,
        on_event=shots,
    )
    return result, shots.artifacts


def _suite(
    folder: Path,
    model: AppModel,
    default_inputs: Any,
    gate: Any,
    packages_denied: Any,
    junit: Path | None,
    artifacts: Path | None,
    as_json: bool,
    out: Console,
    err: Console,
) -> int:
    """Every workflow of `folder` on a fresh simulated phone; exit 0 when all succeeded."""
    items = discover(folder, default_inputs, packages_denied)
    if not items:
        err.print(f"[bold red]error:[/] no workflow in {folder} (*.json files with nodes)", markup=True)
        return EXIT_BAD_INPUT
    reported: list[ReportedRun] = []
    for item in items:
        if item.problem is not None:
            reported.append(not_run(item, item.name))
        else:
            result, shots = _run(item.definition, model, item.inputs, gate, packages_denied)
            run = result.to_json()
            lines = [step_line(e) for e in run["trace"]]
            reported.append(ReportedRun(item.name, item.name, run, [*result.artifacts, *shots], lines))
        last = reported[-1]
        if not as_json:
            ok = last.run["status"] == "success"
            mark = Text("ok  " if ok else "FAIL", style="bold green" if ok else "bold red")
            out.print(Text.assemble(mark, f" {item.path.name}: {item.name!r} ", summary_line(last.run)))
    failed = sum(r.run["status"] != "success" for r in reported)
    if as_json:
        out.out(json.dumps([{"file": str(i.path), **r.run} for i, r in zip(items, reported, strict=True)],
                           indent=2, ensure_ascii=False), highlight=False)  # fmt: skip
    else:
        out.print(f"{len(reported) - failed} of {len(reported)} workflows succeeded", highlight=False)
    _write_reports(reported, junit, artifacts, single=False, err=err)
    return EXIT_SUCCESS if not failed else EXIT_RUN_FAILED


def _write_reports(
    reported: list[ReportedRun], junit: Path | None, artifacts: Path | None, *, single: bool, err: Console
) -> None:
    if junit is not None:
        write_junit(junit, reported)
        err.print(f"JUnit report: {junit}", highlight=False)
    if artifacts is not None:
        for run in reported:
            write_artifacts(artifacts if single else artifacts / safe_name(run.suite), run)
        err.print(f"artifacts: {artifacts}", highlight=False)


def _load_apps(path: Path) -> AppModel:
    try:
        return AppModel.from_dict(load_json_file(path, "app model"))
    except AppModelError as exc:
        raise AppModelError(f"app model file {path}: {exc}") from exc


def _valid(definition: Any, packages_denied: Any, err: Console) -> bool:
    """Print every validation problem; True when none of them is an error."""
    from interpreter.problems import errors_only
    from interpreter.validation import validate

    problems = validate(definition, packages_denied)
    for problem in problems:
        style = "bold red" if problem.severity == "error" else "yellow"
        line = Text.assemble((problem.severity, style), f" {problem.pointer or '/'}: {problem.message}")
        err.print(line)
        if problem.hint:
            err.print(Text(f"    hint: {problem.hint}", style="dim"))
    if errors_only(problems):
        err.print("the workflow is not valid: fix the errors above and run again", style="bold red")
        return False
    return True


def _print_table(out: Console, definition: Any, result: RunResult) -> None:
    name = definition.get("name") if isinstance(definition, dict) else None
    table = Table(title=f"simulated run of {name!r}" if name else "simulated run", title_justify="left")
    for column, justify in (("#", "right"), ("node", "left"), ("kind", "left"), ("outcome", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("tries", justify="right")
    table.add_column("ms", justify="right")
    table.add_column("message / output", overflow="fold")
    for event in result.trace:
        detail = event.message or (json.dumps(event.output, ensure_ascii=False) if event.output else "")
        table.add_row(
            str(event.seq),
            event.node_id,
            event.kind,
            Text(event.outcome.value, style=_OUTCOME_STYLES.get(event.outcome.value, "")),
            str(event.attempts),
            str(event.duration_ms),
            detail,
        )
    out.print(table)
    status_style = _STATUS_STYLES.get(result.status, "bold red")
    summary = Text.assemble(
        (result.status.value, status_style),
        f" · {result.n_steps} steps · {result.n_failed} failed · {result.n_retries} retries"
        f" · {result.duration_ms} ms of virtual time",
    )
    if result.error_message:
        summary.append(f" · {result.error_message}")
    out.print(summary)
