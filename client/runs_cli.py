"""`phoneflow runs list|show|log|watch|trigger|retry|cancel|export`: runs on the server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.text import Text

from client.api import API, Api
from client.common import AsJson, Profile, connect, find_device, find_workflow, is_uuid, parse_inputs
from client.exit_codes import RUN_EXITS, CliError, Exit
from client.output import (
    STEP_COLUMNS,
    duration,
    err,
    out,
    print_json,
    print_table,
    run_summary,
    step_row,
    styled,
    when,
)
from client.watch import TERMINAL, RunView, follow

runs_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Runs on the server: list, show, log, watch, trigger, retry, cancel, export.",
)

RunId = Annotated[
    str,
    typer.Argument(
        help="The run's id, or its first characters (as the dashboard shows it).", show_default=False
    ),
]


def run_id_of(api: Api, ref: str) -> str:
    """The id of the run `ref` names: a whole id, or the first characters of one (4 or more)."""
    ref = ref.strip().lower()
    if is_uuid(ref):
        return ref
    if len(ref) < 4:
        raise CliError(
            f"{ref!r} is too short for a run id: give the whole id or its first 4+ characters "
            "(`phoneflow runs list` shows them)",
            Exit.USAGE,
        )
    found = [r["id"] for r in api.get("/runs", q=ref, limit=10)["runs"] if str(r["id"]).startswith(ref)]
    if not found:
        raise CliError(
            f"no run whose id starts with {ref!r}: `phoneflow runs list` shows them", Exit.NOT_FOUND
        )
    if len(found) > 1:
        raise CliError(
            f"{len(found)} runs have ids starting with {ref!r} ({', '.join(found)}): give more characters",
            Exit.USAGE,
        )
    return str(found[0])


JUnit = Annotated[
    Path | None, typer.Option("--junit", help="Write a JUnit XML report of the run to this file.")
]
Artifacts = Annotated[
    Path | None,
    typer.Option("--artifacts", help="Keep the run's trace, log and screenshots in this folder."),
]
Timeout = Annotated[
    float | None, typer.Option("--timeout", help="Stop following after this many seconds (exit 4).", min=0.1)
]


@runs_app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option("--status", help="Only runs in this status.")] = None,
    workflow: Annotated[
        str | None, typer.Option("--workflow", help="Only this workflow (id or name).")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="Only this device (id, name or serial).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many runs.", min=1, max=500)] = 20,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """The latest runs, newest first."""
    with connect(profile) as api:
        workflow_id = find_workflow(api, workflow)["id"] if workflow else None
        device_id = find_device(api, device)["id"] if device else None
        page = api.get("/runs", status=status, workflowId=workflow_id, deviceId=device_id, limit=limit)
        names = _names(api) if not as_json else ({}, {})
    if as_json:
        print_json(page["runs"])
        return
    workflows, devices = names
    rows = [
        [r["id"], workflows.get(r["workflowId"], r["workflowId"]), devices.get(r["deviceId"] or "", ""),
         styled(r["status"]), r["trigger"], _steps(r), duration(r["durationMs"]), when(r["createdAt"])]
        for r in page["runs"]
    ]  # fmt: skip
    print_table(
        None, ("run", "workflow", "device", "status", "trigger", "steps", "duration", "created"), rows,
        "no runs: `phoneflow runs trigger WORKFLOW --device DEVICE` starts one",
    )  # fmt: skip


def _steps(run: dict[str, Any]) -> str:
    if run["status"] not in TERMINAL and not run.get("nSteps"):
        return f"{run.get('traceLen') or 0} so far"
    failed = f", {run['nFailed']} failed" if run.get("nFailed") else ""
    return f"{run.get('nSteps') or 0}{failed}"


def _names(api: Api) -> tuple[dict[str, str], dict[str, str]]:
    workflows = {w["id"]: w["name"] for w in api.get("/workflows")}
    devices = {d["id"]: d["name"] for d in api.get("/devices")}
    return workflows, devices


@runs_app.command("show")
def show_command(run_id: RunId, profile: Profile = None, as_json: AsJson = False) -> None:
    """One run with its trace. Exit code: how the run ended (0 success, 1 failed, 3 cancelled, 4 timeout)."""
    with connect(profile) as api:
        run = api.get(f"/runs/{run_id_of(api, run_id)}")
    if as_json:
        print_json(run)
    else:
        print_table(f"run {run['id']}", STEP_COLUMNS, [step_row(e) for e in run["trace"]], "no steps yet")
        out.print(_ending(run))
    raise typer.Exit(int(RUN_EXITS.get(run["status"], Exit.OK)))


@runs_app.command("log")
def log_command(run_id: RunId, profile: Profile = None, as_json: AsJson = False) -> None:
    """The run's execution log: the engine's decisions in order (waits, conditions, retries, approvals,
    variables, each edge and why), then the variables as they changed."""
    with connect(profile) as api:
        answer = api.get(f"/runs/{run_id_of(api, run_id)}/log")
    if as_json:
        print_json(answer)
        return
    if answer["source"] != "engine":
        err.print(
            "read from the trace: the bridge that ran this sent no log "
            "(no wait polls, pauses or template values)"
        )
    rows = [_log_row(entry) for entry in answer["entries"]]
    print_table(
        f"run {answer['runId']}: execution log", ("time", "step", "node", "kind", "what"), rows, "no entries"
    )
    changes = [
        [
            _seconds(c["atMs"]),
            str(c["step"] or ""),
            c["nodeId"] or "",
            f"vars.{c['name']}",
            json.dumps(c["value"], ensure_ascii=False),
        ]
        for c in answer["variables"]
    ]
    if changes:
        print_table("variables as they changed", ("time", "step", "node", "variable", "value"), changes, "")


def _log_row(entry: dict[str, Any]) -> list[str]:
    text = entry["text"]
    if entry.get("count"):
        text += f"  (× {entry['count']}, until {_seconds(entry.get('lastAtMs'))})"
    step = "" if entry["step"] is None else str(entry["step"])
    return [_seconds(entry["atMs"]), step, entry["nodeId"] or "", entry["kind"], text]


def _seconds(ms: int | None) -> str:
    return "" if ms is None else f"{ms / 1000:.2f} s"


def _ending(run: dict[str, Any]) -> Text:
    return run_summary(run) if run["status"] in TERMINAL else styled(run["status"])


@runs_app.command("watch")
def watch_command(
    run_id: RunId,
    timeout: Timeout = None,
    junit: JUnit = None,
    artifacts: Artifacts = None,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """Follow a run live (server-sent events) until it ends; exit with how it ended.

    Exit codes: 0 success, 1 failed, 3 cancelled, 4 timeout (or --timeout passed)."""
    with connect(profile) as api:
        run = _follow(api, run_id_of(api, run_id), timeout=timeout, as_json=as_json)
        _reports(api, run, junit, artifacts)
    if as_json:
        print_json(run)
    raise typer.Exit(int(RUN_EXITS[run["status"]]))


def _reports(api: Api, run: dict[str, Any], junit: Path | None, artifacts: Path | None) -> None:
    if junit is not None or artifacts is not None:
        from client.reports import write_run_reports

        write_run_reports(api, run, junit=junit, artifacts=artifacts)


def _follow(api: Api, run_id: str, *, timeout: float | None, as_json: bool) -> dict[str, Any]:
    if as_json:
        return follow(api, run_id, lambda _run: None, timeout_s=timeout)
    with RunView(f"run {run_id}", live=out.is_terminal) as view:
        return follow(api, run_id, view.show, timeout_s=timeout)


@runs_app.command("trigger")
def trigger_command(
    workflow: Annotated[str, typer.Argument(help="The workflow's id or exact name.", show_default=False)],
    device: Annotated[str, typer.Option("--device", help="The device's id, name or serial.")],
    inputs: Annotated[
        str | None, typer.Option("--inputs", help='Run inputs: JSON such as \'{"order": "A-1"}\' or a file.')
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Follow the run until it ends (exit: how).")] = False,
    timeout: Timeout = None,
    junit: JUnit = None,
    artifacts: Artifacts = None,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """Queue a run of the workflow's published version on a device."""
    with connect(profile) as api:
        values = parse_inputs(inputs)
        found = find_workflow(api, workflow)
        if found.get("publishedVersionId", "") is None:
            raise CliError(
                f"workflow {found['name']!r} has no published version, so there is nothing to run: "
                f"`phoneflow workflows publish {found['id']}` publishes its latest "
                "(or push it with `phoneflow workflows push FILE --publish`)",
                Exit.REFUSED,
            )
        target = find_device(api, device)
        run = api.post(f"/workflows/{found['id']}/runs", {"deviceId": target["id"], "inputs": values})
        if target.get("online") is False:
            seen = target.get("lastSeenAt")
            err.print(
                f"note: {target['name']} is offline ("
                + (f"its bridge last reported at {when(seen)}" if seen else "no bridge has served it yet")
                + f"): the run waits in the queue until `phoneflow bridge run --server {api.target.server}` "
                "serves the phone (plugged in, listed by `adb devices`)"
            )
        if not watch:
            if as_json:
                print_json(run)
            else:
                out.print(run["id"])
                err.print(
                    f"queued {found['name']!r} on {target['name']}; "
                    f"follow it: phoneflow runs watch {run['id']}"
                )
            return
        err.print(f"run {run['id']}: {found['name']!r} on {target['name']}")
        run = _follow(api, run["id"], timeout=timeout, as_json=as_json)
        _reports(api, run, junit, artifacts)
    if as_json:
        print_json(run)
    raise typer.Exit(int(RUN_EXITS[run["status"]]))


RETRY_PATH = "/runs/{run_id}/retry"


@runs_app.command("retry")
def retry_command(
    run_id: RunId,
    watch: Annotated[bool, typer.Option("--watch", help="Follow the new run until it ends.")] = False,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """Run a finished run again: same workflow version, device and inputs (needs a server that offers it)."""
    with connect(profile) as api:
        if not api.offers("POST", RETRY_PATH):
            raise CliError(
                f"the server at {api.target.server} does not offer retrying runs yet (its API has no "
                f"POST /api/v1/runs/{{id}}/retry): start the run again with `phoneflow runs trigger WORKFLOW "
                f"--device DEVICE --inputs JSON` (`phoneflow runs show {run_id} --json` has its workflow, "
                "device and inputs)",
                Exit.UNREACHABLE,
            )
        run = api.post(RETRY_PATH.format(run_id=run_id_of(api, run_id)))
        if watch:
            run = _follow(api, run["id"], timeout=None, as_json=as_json)
    if as_json:
        print_json(run)
    else:
        out.print(run["id"])
    if watch:
        raise typer.Exit(int(RUN_EXITS[run["status"]]))


@runs_app.command("cancel")
def cancel_command(run_id: RunId, profile: Profile = None, as_json: AsJson = False) -> None:
    """Cancel a run: a queued one ends now, a moving one stops after its current step."""
    with connect(profile) as api:
        run_id = run_id_of(api, run_id)
        run = api.post(f"/runs/{run_id}/cancel")
    if as_json:
        print_json(run)
    elif run["status"] == "cancelled":
        out.print(f"run {run_id} cancelled")
    else:
        out.print(f"run {run_id}: cancel requested; it stops after its current step ({run['status']} now)")


@runs_app.command("export")
def export_command(
    days: Annotated[int, typer.Option("--days", help="How many days back.", min=1, max=3650)] = 30,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: standard output).")
    ] = None,
    profile: Profile = None,
) -> None:
    """The runs of the last DAYS days with their traces, as one JSON array (streamed)."""
    with connect(profile) as api:
        try:
            with api.http.stream("GET", f"{API}/runs/export", params={"days": days}) as response:
                if response.status_code >= 400:
                    response.read()
                    raise api.refused(response)
                sink = output.open("wb") if output is not None else sys.stdout.buffer
                try:
                    for chunk in response.iter_bytes():
                        sink.write(chunk)
                finally:
                    if output is not None:
                        sink.close()
                    else:
                        sink.flush()
        except httpx.TransportError as exc:
            raise api.unreachable(exc) from None
    if output is not None:
        err.print(f"exported the last {days} days of runs to {output}")
