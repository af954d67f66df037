"""CI reports of runs: JUnit XML and a local folder of each run's trace, log and screenshots.

A run becomes one JUnit `testsuite`: one `testcase` per trace event (named `NN node (kind)`,
classname the workflow) and a last `run` testcase that fails unless the run succeeded, so a
run that ends badly without a failed step (timeout, bad inputs, cancelled) still turns CI
red. A failed step is a `failure` when the run did not succeed; when the workflow handled it
(a `failed` edge) and the run succeeded, it passes with a note in its `system-out`. Skipped
steps are `skipped`. The shape follows the Ant/Surefire JUnit format that Jenkins, GitLab and
GitHub reporters read.
"""

from __future__ import annotations

import json
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interpreter.device import Artifact, Device
from interpreter.trace import Outcome, TraceEvent


@dataclass
class ReportedRun:
    """One run to report: its suite name, the run as JSON (the engine's or the server's shape),
    the files it produced, and its log lines."""

    suite: str
    workflow: str
    run: dict[str, Any]
    artifacts: list[Artifact] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)


def step_line(event: dict[str, Any]) -> str:
    """`step 3 sign_in (action.tapByText) ok 120 ms  message` — one line of a run's log."""
    detail = event.get("message") or (
        json.dumps(event["output"], ensure_ascii=False) if event.get("output") else ""
    )
    line = (
        f"step {event.get('seq')} {event.get('nodeId')} ({event.get('kind')}) {event.get('outcome')} "
        f"{event.get('durationMs', 0)} ms"
    )
    return f"{line}  {detail}" if detail else line


def summary_line(run: dict[str, Any]) -> str:
    """`success · 6 steps · 0 failed · 0 retries · 1234 ms[ · error]`."""
    line = (
        f"{run.get('status')} · {run.get('nSteps') or 0} steps · {run.get('nFailed') or 0} failed"
        f" · {run.get('nRetries') or 0} retries · {run.get('durationMs') or 0} ms"
    )
    return f"{line} · {run['errorMessage']}" if run.get("errorMessage") else line


class FailureShots:
    """An `on_event` hook keeping a screenshot of the screen at each failed step (failure context)."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.artifacts: list[Artifact] = []

    def __call__(self, event: TraceEvent) -> None:
        if event.outcome is not Outcome.FAILED:
            return
        try:
            shot = self.device.screenshot()
        except Exception as exc:  # the device may be why the step failed; the run matters more
            self.artifacts.append(
                Artifact(
                    f"failure-{event.seq}-{event.node_id}.txt", "text/plain", f"no screenshot: {exc}".encode()
                )
            )
            return
        # the simulator's "screenshot" is a JSON summary of the screen, a phone's a PNG
        extension = _EXTENSIONS.get(shot.content_type, ".bin")
        name = f"failure-{event.seq}-{event.node_id}{extension}"
        self.artifacts.append(Artifact(name, shot.content_type, shot.data))


_EXTENSIONS = {
    "image/png": ".png",
    "application/json": ".json",
    "application/xml": ".xml",
    "text/plain": ".txt",
}


def _seconds(ms: Any) -> str:
    return f"{(ms or 0) / 1000:.3f}"


def _suite(reported: ReportedRun, hostname: str) -> tuple[ET.Element, int, int]:
    run = reported.run
    status = run.get("status")
    succeeded = status == "success"
    trace: Sequence[dict[str, Any]] = run.get("trace") or []
    suite = ET.Element("testsuite", name=reported.suite)
    properties = ET.SubElement(suite, "properties")
    for name, value in {
        "runId": str(run.get("id", "")),
        "status": str(status),
        **reported.properties,
    }.items():
        ET.SubElement(properties, "property", name=name, value=value)
    failures = skipped = 0
    width = len(str(len(trace)))
    for event in trace:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=reported.workflow,
            name=f"{str(event.get('seq')).zfill(width)} {event.get('nodeId')} ({event.get('kind')})",
            time=_seconds(event.get("durationMs")),
        )
        message = event.get("message") or ""
        if event.get("outcome") == Outcome.FAILED.value:
            if succeeded:
                ET.SubElement(case, "system-out").text = f"failed, handled by the workflow: {message}"
            else:
                failures += 1
                failure = ET.SubElement(case, "failure", type=str(event.get("kind")), message=message)
                failure.text = step_line(event)
        elif event.get("outcome") == Outcome.SKIPPED.value:
            skipped += 1
            ET.SubElement(case, "skipped", message=message or "skipped")
    ending = ET.SubElement(
        suite, "testcase", classname=reported.workflow, name="run", time=_seconds(run.get("durationMs"))
    )
    if not succeeded:
        failures += 1
        failure = ET.SubElement(
            ending, "failure", type=str(status), message=run.get("errorMessage") or f"the run ended {status}"
        )
        failure.text = summary_line(run)
    if reported.log:
        ET.SubElement(suite, "system-out").text = "\n".join(reported.log) + "\n"
    tests = len(trace) + 1
    suite.attrib.update(
        tests=str(tests),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=_seconds(run.get("durationMs")),
        timestamp=str(run.get("startedAt") or ""),
        hostname=hostname,
    )
    return suite, tests, failures


def junit_xml(runs: Sequence[ReportedRun], name: str = "phoneflow") -> bytes:
    """The JUnit XML document of `runs`, one testsuite each."""
    root = ET.Element("testsuites", name=name)
    hostname = socket.gethostname()
    tests = failures = 0
    total_ms = 0
    for reported in runs:
        suite, suite_tests, suite_failures = _suite(reported, hostname)
        root.append(suite)
        tests += suite_tests
        failures += suite_failures
        total_ms += reported.run.get("durationMs") or 0
    root.attrib.update(tests=str(tests), failures=str(failures), errors="0", time=_seconds(total_ms))
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def write_junit(path: Path, runs: Sequence[ReportedRun]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit_xml(runs))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """`text` as a file or folder name (letters, digits, `._-`)."""
    return _UNSAFE.sub("-", text).strip("-.") or "run"


def write_artifacts(folder: Path, reported: ReportedRun) -> list[Path]:
    """`run.json` (the run with its trace), `log.txt` and every file of the run, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "run.json", folder / "log.txt"]
    written[0].write_text(json.dumps(reported.run, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = reported.log or [step_line(e) for e in reported.run.get("trace") or []]
    written[1].write_text("\n".join([*lines, summary_line(reported.run)]) + "\n", encoding="utf-8")
    for artifact in reported.artifacts:
        path = folder / safe_name(artifact.name)
        path.write_bytes(artifact.data)
        written.append(path)
    return written
