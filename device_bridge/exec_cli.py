"""`phoneflow bridge exec`: workflows on phones without a server, each step shown as it happens.

One FILE on one phone prints each step the moment the engine writes it, then the run's
summary (`--json`: only the run, at the end). A folder runs every
workflow in it (suite mode, `interpreter/suite.py`) on each `--serial`, the phones at once
and each phone's workflows one after another. `--junit FILE` writes a JUnit report (one
testsuite per workflow and phone) and `--artifacts DIR` keeps each run's trace, log and
screenshots (the screen and the UI hierarchy at every failed step, and `action.screenshot`s).

Exit codes: 0 every run succeeded, 1 one did not, 2 the input or the setup could not be used.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from device_bridge.cli_options import (
    EXIT_BAD_INPUT,
    EXIT_RUN_FAILED,
    EXIT_SUCCESS,
    AppiumCapabilities,
    AppiumUrl,
    Driver,
    StateDir,
    _driver_options,
    _settings,
)
from device_bridge.errors import BridgeError
from device_bridge.settings import BridgeSettings
from interpreter.device import Artifact
from interpreter.reports import (
    ReportedRun,
    safe_name,
    step_line,
    summary_line,
    write_artifacts,
    write_junit,
)
from interpreter.trace import Outcome, TraceEvent

_out = Console(soft_wrap=True, highlight=False)
_err = Console(stderr=True, soft_wrap=True, highlight=False)
_OUTCOME_STYLES = {"ok": "green", "skipped": "yellow", "failed": "bold red"}
_print_lock = threading.Lock()


class _Fail(Exception):
    pass


def exec_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="The workflow definition (JSON), or a folder: every workflow in it.", show_default=False
        ),
    ],
    serial: Annotated[
        list[str], typer.Option("--serial", help="The adb serial of a phone (repeat to run on several).")
    ],
    inputs: Annotated[
        str | None,
        typer.Option("--inputs", help='Run inputs: JSON text such as \'{"order": "A-1"}\' or a file.'),
    ] = None,
    scenario: Annotated[Path | None, typer.Option("--scenario", help="How approvals are answered.")] = None,
    denylist: Annotated[Path | None, typer.Option("--denylist", help="Package denylist file.")] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write a JUnit XML report to this file.")
    ] = None,
    artifacts: Annotated[
        Path | None,
        typer.Option("--artifacts", help="Keep each run's trace, log and screenshots in this folder."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run (or the runs) as JSON.")] = False,
    state_dir: StateDir = None,
    driver: Driver = None,
    appium_url: AppiumUrl = None,
    appium_capabilities: AppiumCapabilities = None,
) -> None:
    """Run FILE (or every workflow of a folder) on the phones, without a server, showing each step."""
    from interpreter.errors import WorkflowError
    from interpreter.scenario import load_denylist, load_json_file, load_scenario, parse_inputs
    from interpreter.suite import SuiteItem, discover

    settings = _settings(state_dir, **_driver_options(driver, appium_url, appium_capabilities))
    try:
        run_inputs = parse_inputs(inputs)
        gate = load_scenario(scenario)
        denied = load_denylist(denylist)
        if file.is_dir():
            items = discover(file, run_inputs, denied)
            if not items:
                raise WorkflowError(f"no workflow in {file} (*.json files with nodes)")
        else:
            definition = load_json_file(file, "workflow")
            items = [SuiteItem(file, str(definition.get("name") or file.stem), definition, run_inputs)]
            _check_valid(definition, denied)
    except (WorkflowError, _Fail) as exc:
        _err.print(Text.assemble(("error: ", "bold red"), str(exc)))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    for item in items:
        _warn_unanswered(item.path, item.definition, gate)
    suite_mode = file.is_dir() or len(serial) > 1
    runner = _Runner(settings, gate, denied, live=not as_json, prefix=suite_mode)
    threads = [threading.Thread(target=runner.run_all, args=(s, items), daemon=True) for s in serial]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if runner.setup_errors and not runner.reported:
        raise typer.Exit(EXIT_BAD_INPUT)
    reported = runner.reported
    if as_json:
        runs = [{"suite": r.suite, **r.run} for r in reported]
        _out.out(json.dumps(runs if suite_mode else runs[0], indent=2, ensure_ascii=False), highlight=False)
    elif suite_mode:
        failed = sum(r.run["status"] != "success" for r in reported)
        _out.print(f"{len(reported) - failed} of {len(reported)} runs succeeded")
    if junit is not None:
        write_junit(junit, reported)
        _err.print(f"JUnit report: {junit}")
    if artifacts is not None:
        for run in reported:
            write_artifacts(artifacts / safe_name(run.suite) if suite_mode else artifacts, run)
        _err.print(f"artifacts: {artifacts}")
    ok = not runner.setup_errors and all(r.run["status"] == "success" for r in reported)
    raise typer.Exit(EXIT_SUCCESS if ok else EXIT_RUN_FAILED)


def _warn_unanswered(path: Path, definition: Any, gate: Any) -> None:
    """Say before the run that approvals nobody can answer here will wait their whole timeoutS."""
    answered = set(getattr(gate, "answers", {}))
    nodes = definition.get("nodes") if isinstance(definition, dict) else None
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict) or node.get("kind") != "control.approval" or node.get("id") in answered:
            continue
        params = node.get("params")
        timeout = params.get("timeoutS", 60) if isinstance(params, dict) else 60
        waits = (
            "fails at once (timeoutS 0)"
            if timeout == 0
            else f"waits its whole timeoutS ({timeout} s) and times out"
        )
        _err.print(
            Text.assemble(
                ("note: ", "bold yellow"),
                f"{path.name}: nobody can answer approval '{node.get('id')}' here (bridge exec has no "
                f"server, and no --scenario answers it), so it {waits}; give its answer with --scenario "
                "FILE, or run the workflow through the server (phoneflow runs trigger)",
            )
        )


def _check_valid(definition: Any, denied: Any) -> None:
    from interpreter.problems import errors_only
    from interpreter.validation import validate

    problems = validate(definition, denied)
    for problem in problems:
        _err.print(f"{problem.severity} {problem.pointer or '/'}: {problem.message}", highlight=False)
        _err.print(f"  hint: {problem.hint}", highlight=False)
    if errors_only(problems):
        raise _Fail("the workflow is not valid: fix the errors above and run again")


class _Runner:
    """Runs the workflows on one phone per thread; prints each step as the engine writes it."""

    def __init__(self, settings: BridgeSettings, gate: Any, denied: Any, *, live: bool, prefix: bool) -> None:
        self.settings = settings
        self.gate = gate
        self.denied = denied
        self.live = live
        self.prefix = prefix
        self.reported: list[ReportedRun] = []
        self.setup_errors: list[str] = []
        self._lock = threading.Lock()

    def _say(self, serial: str, text: Text | str) -> None:
        if not self.live:
            return
        line = Text.assemble(f"[{serial}] " if self.prefix else "", text)
        with _print_lock:
            _out.print(line)

    def run_all(self, serial: str, items: list[Any]) -> None:
        from device_bridge.devices import open_device
        from interpreter.suite import not_run

        try:
            device = open_device(serial, self.settings)
        except BridgeError as exc:
            with _print_lock:
                _err.print(Text.assemble(("error: ", "bold red"), str(exc)))
            with self._lock:
                self.setup_errors.append(str(exc))
            return
        try:
            for item in items:
                suite = f"{item.name} on {serial}"
                if item.problem is not None:
                    result = not_run(item, suite)
                    self._say(
                        serial, Text.assemble(("not run ", "bold red"), f"{item.path.name}: {item.problem}")
                    )
                else:
                    result = self._run_one(device, serial, suite, item)
                with self._lock:
                    self.reported.append(result)
        finally:
            device.close()

    def _run_one(self, device: Any, serial: str, suite: str, item: Any) -> ReportedRun:
        from interpreter.engine import run_workflow

        log: list[str] = []
        failure_files: list[Artifact] = []
        if self.prefix:
            self._say(serial, Text(f"{item.name} ({item.path.name})", style="bold"))

        def on_event(event: TraceEvent) -> None:
            line = step_line(event.to_json())
            log.append(line)
            if event.outcome is Outcome.FAILED:
                failure_files.extend(_failure_context(device, event))
            style = _OUTCOME_STYLES.get(event.outcome.value, "")
            head, _, rest = line.partition(f" {event.outcome.value} ")
            self._say(serial, Text.assemble(f"{head} ", (event.outcome.value, style), f" {rest}"))

        result = run_workflow(
            item.definition,
            device,
            inputs=item.inputs,
            denylist=self.denied,
            approvals=self.gate,
            on_event=on_event,
        )
        run = result.to_json()
        status_style = "bold green" if run["status"] == "success" else "bold red"
        self._say(
            serial, Text.assemble((str(run["status"]), status_style), summary_line(run)[len(run["status"]) :])
        )
        return ReportedRun(
            suite, item.name, run, [*result.artifacts, *failure_files], log, {"serial": serial}
        )


def _failure_context(device: Any, event: TraceEvent) -> list[Artifact]:
    """The screen and the UI hierarchy at a failed step (as the agent uploads them)."""
    stem = f"failure-{event.seq}-{event.node_id}"
    try:
        shot = device.screenshot()
        xml = device.hierarchy_xml().encode("utf-8")
    except Exception as exc:  # the device may be why the step failed: the run matters more
        return [Artifact(f"{stem}.txt", "text/plain", f"no failure context: {exc}".encode())]
    return [
        Artifact(f"{stem}.png", shot.content_type, shot.data),
        Artifact(f"{stem}-hierarchy.xml", "application/xml", xml),
    ]
