"""`phoneflow workflow validate FILE [--denylist FILE] [--json]`.

Exit codes: 0 the workflow is valid (warnings allowed), 1 it has errors, 2 an input
could not be read (missing file, not JSON, a bad denylist file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from interpreter.denylist import Denylist
from interpreter.problems import Problem, errors_only
from interpreter.strict_json import StrictJsonError, loads_strict
from interpreter.validation import validate

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2

workflow_app = typer.Typer(
    help="Validate workflow definitions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@workflow_app.callback()
def workflow_group() -> None:
    """Validate workflow definitions."""
    # A callback keeps `validate` a sub-command even while it is the only one.


class UnreadableInput(Exception):
    """An input file cannot be used; the message says which file and why."""


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UnreadableInput(f"cannot read {what} {path}: no such file") from None
    except IsADirectoryError:
        raise UnreadableInput(f"cannot read {what} {path}: it is a directory, not a file") from None
    except PermissionError:
        raise UnreadableInput(f"cannot read {what} {path}: permission denied") from None
    except UnicodeDecodeError as exc:
        raise UnreadableInput(
            f"cannot read {what} {path}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})"
        ) from None
    except OSError as exc:
        raise UnreadableInput(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def load_definition(path: Path) -> Any:
    """The parsed JSON of a workflow file, or `UnreadableInput` naming the file and the place."""
    text = _read_text(path, "workflow file")
    try:
        return loads_strict(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise UnreadableInput(f"{path} is not JSON: {exc.msg} at {where}") from None
    except StrictJsonError as exc:
        raise UnreadableInput(f"{path}: {exc}") from None
    except RecursionError:
        raise UnreadableInput(f"{path} is nested too deeply to read") from None


def load_denylist(path: Path) -> Denylist:
    """The denylist file (one name or glob a line, `#` comments), naming a bad line."""
    text = _read_text(path, "denylist file")
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            Denylist.parse(line)
        except ValueError as exc:
            raise UnreadableInput(f"denylist file {path}, line {number}: {exc}") from None
    return Denylist.parse(text)


def _summary(problems: list[Problem], path: Path) -> str:
    errors = len(errors_only(problems))
    warnings = len(problems) - errors
    warned = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
    if errors:
        return f"{path}: invalid, {errors} error{'s' if errors != 1 else ''}{warned}"
    return f"{path}: valid{warned}"


def _print_problem(problem: Problem) -> None:
    colour = typer.colors.RED if problem.severity == "error" else typer.colors.YELLOW
    typer.secho(problem.severity, fg=colour, bold=True, nl=False)
    typer.echo(f" {problem.pointer or '/'}: {problem.message}")
    typer.echo(f"  hint: {problem.hint}")


@workflow_app.command("validate")
def validate_command(
    file: Annotated[Path, typer.Argument(help="The workflow definition (JSON).", show_default=False)],
    denylist: Annotated[
        Path | None,
        typer.Option("--denylist", help="A package denylist file: one name or glob a line, # comments."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the problems as JSON.")] = False,
) -> None:
    """Check a workflow definition: schema, graph, templates, CEL, packages and the denylist."""
    try:
        deny = load_denylist(denylist) if denylist is not None else None
        definition = load_definition(file)
    except UnreadableInput as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(EXIT_UNREADABLE) from None
    problems = validate(definition, deny)
    valid = not errors_only(problems)
    if as_json:
        report = {
            "file": str(file),
            "valid": valid,
            "errors": len(errors_only(problems)),
            "warnings": len(problems) - len(errors_only(problems)),
            "problems": [p.to_json() for p in problems],
        }
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for problem in problems:
            _print_problem(problem)
        typer.echo(_summary(problems, file))
    raise typer.Exit(EXIT_VALID if valid else EXIT_INVALID)
