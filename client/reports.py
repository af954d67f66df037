"""CI reports of a run followed on a server: JUnit XML and a local folder with the run's trace, its
log and the files the phone uploaded (screenshots, UI hierarchies)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from client.api import Api
from client.output import err
from interpreter.device import Artifact
from interpreter.reports import ReportedRun, step_line, write_artifacts, write_junit


def write_run_reports(api: Api, run: dict[str, Any], *, junit: Path | None, artifacts: Path | None) -> None:
    workflow = api.get(f"/workflows/{run['workflowId']}")["name"]
    device = api.get(f"/devices/{run['deviceId']}") if run.get("deviceId") else None
    suite = f"{workflow} on {device['name']}" if device else workflow
    properties = {"server": api.target.server}
    if device:
        properties["serial"] = device["serial"]
    files: list[Artifact] = []
    if artifacts is not None:
        for listed in api.get(f"/runs/{run['id']}/artifacts"):
            data = api.request("GET", f"/runs/{run['id']}/artifacts/{quote(listed['name'], safe='')}").content
            files.append(Artifact(listed["name"], listed["contentType"], data))
    reported = ReportedRun(
        suite, workflow, run, files, [step_line(e) for e in run.get("trace", [])], properties
    )
    if junit is not None:
        write_junit(junit, [reported])
        err.print(f"JUnit report: {junit}")
    if artifacts is not None:
        write_artifacts(artifacts, reported)
        err.print(f"artifacts: {artifacts} ({len(files)} file(s) from the server)")
