"""`phoneflow simulate`: run a workflow on the simulator and print its trace.

Exit codes: 0 the run succeeded, 1 it did not (failed, timeout), 2 the input could not
be used (a file is missing or not JSON, the workflow or the app model is not valid).
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
from interpreter.engine import RunResult, run_workflow
from interpreter.errors import AppModelError, WorkflowError
from interpreter.scenario import load_denylist, load_json_file, load_scenario, parse_inputs
from interpreter.simulator import SimulatedDevice
from interpreter.trace import RunStatus

simulate_app = typer.Typer(add_completion=False, help="Run a workflow on the simulator and print its trace.")

EXIT_SUCCESS = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2

_OUTCOME_STYLES = {"ok": "green", "skipped": "yellow", "failed": "bold red"}
_STATUS_STYLES = {RunStatus.SUCCESS: "bold green", RunStatus.TIMEOUT: "bold yellow"}


@simulate_app.command()
def simulate(
    file: Annotated[Path, typer.Argument(help="The workflow definition (JSON).", show_default=False)],
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
        typer.Option("--inputs", help='Run inputs: JSON text such as \'{"order": "A-1"}\' or a file.'),
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="How approvals are answered (scenario.json).")
    ] = None,
    denylist: Annotated[
        Path | None, typer.Option("--denylist", help="Package denylist: one name or glob a line.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Run FILE on a simulated phone (virtual time: waits cost nothing) and print the trace."""
    out = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    try:
        definition = load_json_file(file, "workflow")
        if apps is None:
            apps = sample_apps_path()
            err.print(f"apps: the sample apps ({apps}); --apps FILE for your own", highlight=False)
        model = _load_apps(apps)
        run_inputs = parse_inputs(inputs)
        gate = load_scenario(scenario)
        packages_denied = load_denylist(denylist)
    except (WorkflowError, AppModelError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    if not _valid(definition, packages_denied, err):
        raise SystemExit(EXIT_BAD_INPUT)
    clock = VirtualClock()
    device = SimulatedDevice(model, clock)
    result = run_workflow(
        definition, device, inputs=run_inputs, clock=clock, denylist=packages_denied, approvals=gate
    )
    if as_json:
        out.out(json.dumps(result.to_json(), indent=2, ensure_ascii=False), highlight=False)
    else:
        _print_table(out, definition, result)
    # SystemExit, not typer.Exit: `phoneflow` mounts this command under a plain click group,
    # which does not know typer's own exit exception.
    raise SystemExit(EXIT_SUCCESS if result.status is RunStatus.SUCCESS else EXIT_RUN_FAILED)


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
