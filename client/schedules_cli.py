"""`phoneflow schedules list|show|create|enable|disable|delete`: cron schedules of workflows."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from client.common import AsJson, Profile, connect, find_device, find_workflow, parse_inputs
from client.output import out, print_json, print_table, styled, when

schedules_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Cron schedules of workflows.")

ScheduleId = Annotated[str, typer.Argument(help="The schedule's id.", show_default=False)]


def _rows(schedules: list[dict[str, Any]], workflows: dict[str, str], devices: dict[str, str]) -> list[Any]:
    return [
        [s["id"], workflows.get(s["workflowId"], s["workflowId"]), devices.get(s["deviceId"], s["deviceId"]),
         s["cron"], s["timezone"], "on" if s["enabled"] else styled("off", {"off": "yellow"}),
         when(s["nextFireAt"]), when(s["lastFiredAt"]), s.get("lastError") or ""]
        for s in schedules
    ]  # fmt: skip


COLUMNS = ("id", "workflow", "device", "cron", "time zone", "state", "next", "last fired", "last error")


@schedules_app.command("list")
def list_command(
    workflow: Annotated[
        str | None, typer.Option("--workflow", help="Only this workflow (id or name).")
    ] = None,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """The account's schedules."""
    with connect(profile) as api:
        workflow_id = find_workflow(api, workflow)["id"] if workflow else None
        schedules = api.get("/schedules", workflowId=workflow_id)
        workflows = {w["id"]: w["name"] for w in api.get("/workflows")}
        devices = {d["id"]: d["name"] for d in api.get("/devices")}
    if as_json:
        print_json(schedules)
        return
    print_table(
        None, COLUMNS, _rows(schedules, workflows, devices),
        "no schedules: `phoneflow schedules create WORKFLOW --device D --cron '*/15 * * * *'` adds one",
    )  # fmt: skip


@schedules_app.command("show")
def show_command(schedule_id: ScheduleId, profile: Profile = None, as_json: AsJson = False) -> None:
    """One schedule."""
    with connect(profile) as api:
        schedule = api.get(f"/schedules/{schedule_id}")
    if as_json:
        print_json(schedule)
        return
    print_table(None, COLUMNS, _rows([schedule], {}, {}), "")


@schedules_app.command("create")
def create_command(
    workflow: Annotated[str, typer.Argument(help="The workflow's id or exact name.", show_default=False)],
    device: Annotated[str, typer.Option("--device", help="The device's id, name or serial.")],
    cron: Annotated[
        str, typer.Option("--cron", help="5 fields: minute hour day-of-month month day-of-week.")
    ],
    timezone: Annotated[
        str, typer.Option("--timezone", help="An IANA time zone, e.g. Europe/Paris.")
    ] = "UTC",
    inputs: Annotated[str | None, typer.Option("--inputs", help="Run inputs: JSON or a file.")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off.")] = False,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """Queue a run of the workflow's published version on a device at every slot of a crontab."""
    with connect(profile) as api:
        values = parse_inputs(inputs)
        found = find_workflow(api, workflow)
        target = find_device(api, device)
        body = {"deviceId": target["id"], "cron": cron, "timezone": timezone, "inputs": values,
                "enabled": not disabled}  # fmt: skip
        schedule = api.post(f"/workflows/{found['id']}/schedules", body)
    if as_json:
        print_json(schedule)
    else:
        what = f"{found['name']!r} on {target['name']} at {cron!r} ({timezone})"
        out.print(f"schedule {schedule['id']}: {what}; next {when(schedule['nextFireAt'])}")


def _switch(schedule_id: str, enabled: bool, profile: str | None, as_json: bool) -> None:
    with connect(profile) as api:
        schedule = api.patch(f"/schedules/{schedule_id}", {"enabled": enabled})
    if as_json:
        print_json(schedule)
    else:
        state = f"on, next {when(schedule['nextFireAt'])}" if enabled else "off"
        out.print(f"schedule {schedule_id} is {state}")


@schedules_app.command("enable")
def enable_command(schedule_id: ScheduleId, profile: Profile = None, as_json: AsJson = False) -> None:
    """Switch a schedule on."""
    _switch(schedule_id, True, profile, as_json)


@schedules_app.command("disable")
def disable_command(schedule_id: ScheduleId, profile: Profile = None, as_json: AsJson = False) -> None:
    """Switch a schedule off (it is kept)."""
    _switch(schedule_id, False, profile, as_json)


@schedules_app.command("delete")
def delete_command(schedule_id: ScheduleId, profile: Profile = None) -> None:
    """Delete a schedule."""
    with connect(profile) as api:
        api.delete(f"/schedules/{schedule_id}")
    out.print(f"schedule {schedule_id} deleted")
