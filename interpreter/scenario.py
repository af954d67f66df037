"""Loading what a simulation runs with: JSON files, the scenario (approval answers), a denylist.

Shared by `phoneflow simulate` and the golden-trace cases, so that both read the same
files the same way and say the same thing when one is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from interpreter import safe_json
from interpreter.approvals import ScenarioApprovals
from interpreter.denylist import Denylist
from interpreter.errors import WorkflowError
from interpreter.strict_json import StrictJsonError, loads_strict


class InputFileError(WorkflowError):
    """A file given to a simulation cannot be read or is not what it should be."""


def load_json_file(path: str | Path, what: str) -> Any:
    """The parsed JSON of `path`; `InputFileError` naming the file, the line and what to do."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputFileError(f"{what} file {file} does not exist: check the path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{what} file {file} cannot be read: {exc}") from exc
    try:
        return safe_json.checked(loads_strict(text))
    except json.JSONDecodeError as exc:
        raise InputFileError(
            f"{what} file {file} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc
    except StrictJsonError as exc:
        raise InputFileError(f"{what} file {file}: {exc}") from exc
    except RecursionError as exc:
        raise InputFileError(f"{what} file {file} is nested too deeply to read") from exc
    except safe_json.UnsafeJson as exc:
        raise InputFileError(f"{what} file {file} cannot be used: {exc}; {exc.hint}") from None


def parse_inputs(value: str | None) -> dict[str, Any]:
    """Run inputs from `--inputs`: JSON text (`{"order": "A-1"}`) or the path of a JSON file."""
    if value is None or not value.strip():
        return {}
    stripped = value.strip()
    if stripped[0] in "{[":
        try:
            data = safe_json.checked(loads_strict(stripped))
        except json.JSONDecodeError as exc:
            raise InputFileError(f"--inputs is not valid JSON: {exc.msg} at column {exc.colno}") from exc
        except StrictJsonError as exc:
            raise InputFileError(f"--inputs: {exc}") from exc
        except RecursionError:
            raise InputFileError("--inputs is nested too deeply to read") from None
        except safe_json.UnsafeJson as exc:
            raise InputFileError(f"--inputs cannot be used: {exc}; {exc.hint}") from None
    else:
        data = load_json_file(stripped, "inputs")
    if not isinstance(data, dict):
        raise InputFileError('the inputs must be a JSON object such as {"order": "A-1"}')
    return data


def load_scenario(path: str | Path | None) -> ScenarioApprovals:
    """The approval answers of a `scenario.json`; none (every approval times out) without a file."""
    if path is None:
        return ScenarioApprovals()
    return ScenarioApprovals.from_json(load_json_file(path, "scenario"), source=str(path))


def load_denylist(path: str | Path | None) -> Denylist:
    """A denylist file (one package name or glob a line, `#` comments); empty without a file."""
    if path is None:
        return Denylist()
    file = Path(path)
    try:
        return Denylist.from_file(file)
    except FileNotFoundError as exc:
        raise InputFileError(f"denylist file {file} does not exist: check the path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"denylist file {file} cannot be read: {exc}") from exc
    except ValueError as exc:
        raise InputFileError(f"denylist file {file}: {exc}") from exc
