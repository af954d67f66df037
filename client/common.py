"""What every API command shares: the --profile and --json options, and one way to fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from client.api import Api
from client.exit_codes import CliError, Exit
from client.output import err
from client.profiles import resolve

Profile = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="The login profile to use (PHONEFLOW_PROFILE; default 'default'). "
        "PHONEFLOW_SERVER / PHONEFLOW_TOKEN override it.",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")]


def fail(error: CliError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {error.message}", markup=True, highlight=False)
    return typer.Exit(int(error.code))


@contextmanager
def connect(profile: str | None) -> Iterator[Api]:
    """The API of the profile's server; a `CliError` raised in the block ends the command with its
    message and exit code."""
    try:
        with Api(resolve(profile)) as api:
            yield api
    except CliError as exc:
        raise fail(exc) from None


@contextmanager
def failing() -> Iterator[None]:
    """For commands without a server: a `CliError` ends the command with its message and code."""
    try:
        yield
    except CliError as exc:
        raise fail(exc) from None


def parse_inputs(text: str | None) -> dict[str, Any]:
    """`--inputs`: JSON text or the path of a JSON file, an object."""
    if not text:
        return {}
    source = "--inputs"
    candidate = Path(text)
    if not text.lstrip().startswith("{") and candidate.is_file():
        source = str(candidate)
        text = candidate.read_text(encoding="utf-8")
    try:
        value = json.loads(text)
    except ValueError as exc:
        if source == "--inputs" and not text.lstrip().startswith(("{", "[")):
            raise CliError(
                f"--inputs {text!r}: no such file in {Path.cwd()}, and not JSON either: give an object like "
                '\'{"order": "A-1"}\' or the path of a JSON file',
                Exit.USAGE,
            ) from None
        raise CliError(
            f'{source} is not JSON ({exc}): give an object like \'{{"order": "A-1"}}\' or a file', Exit.USAGE
        ) from None
    if not isinstance(value, dict):
        raise CliError(f"{source} must be a JSON object, not {type(value).__name__}", Exit.USAGE)
    return value


def is_uuid(value: str) -> bool:
    parts = value.split("-")
    return len(value) == 36 and [len(p) for p in parts] == [8, 4, 4, 4, 12]


def find_workflow(api: Api, ref: str) -> dict[str, Any]:
    """A workflow by id or by exact name."""
    if is_uuid(ref):
        found: dict[str, Any] = api.get(f"/workflows/{ref}")
        return found
    matches = [w for w in api.get("/workflows") if w["name"] == ref]
    if not matches:
        raise CliError(f"no workflow named {ref!r}: `phoneflow workflows list` shows them", Exit.NOT_FOUND)
    if len(matches) > 1:
        ids = ", ".join(w["id"] for w in matches)
        raise CliError(f"{len(matches)} workflows are named {ref!r}: give the id ({ids})", Exit.USAGE)
    detail: dict[str, Any] = api.get(f"/workflows/{matches[0]['id']}")
    return detail


def find_device(api: Api, ref: str) -> dict[str, Any]:
    """A device by id, name or adb serial."""
    if is_uuid(ref):
        found: dict[str, Any] = api.get(f"/devices/{ref}")
        return found
    devices = api.get("/devices")
    for key in ("name", "serial"):
        matches = [d for d in devices if d[key] == ref and not d.get("revokedAt")]
        if len(matches) == 1:
            device: dict[str, Any] = matches[0]
            return device
        if len(matches) > 1:
            ids = ", ".join(d["id"] for d in matches)
            raise CliError(f"{len(matches)} devices have the {key} {ref!r}: give the id ({ids})", Exit.USAGE)
    raise CliError(
        f"no device with the id, name or serial {ref!r}: `phoneflow devices list` shows them", Exit.NOT_FOUND
    )
