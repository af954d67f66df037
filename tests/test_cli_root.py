"""The root `phoneflow` command: every part's sub-command is reachable, help and errors are clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from phoneflow.cli import SUBCOMMANDS

PHONEFLOW = Path(sys.executable).with_name("phoneflow")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PHONEFLOW), *args], capture_output=True, text=True, timeout=60, check=False)


def test_help_lists_every_part() -> None:
    result = run("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("phoneflow ")


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_each_sub_command_has_help_without_a_traceback(name: str) -> None:
    result = run(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_usage_errors_exit_2_with_a_message() -> None:
    unknown = run("nosuch")
    assert unknown.returncode == 2
    assert "No such command 'nosuch'" in unknown.stderr
    missing = run("simulate")
    assert missing.returncode == 2
    assert "Missing argument" in missing.stderr
    assert "Traceback" not in missing.stderr


def _every_command(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every command and group under the root, loading each part."""
    import typer.main

    found = [path]
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if hasattr(sub, "list_commands"):
            found += _every_command(sub, (*path, name))
        else:
            found.append((*path, name))
    return found


def test_flags_show_no_value_placeholder_anywhere() -> None:
    import typer.main

    from phoneflow.cli import app

    root = typer.main.get_command(app)
    paths = _every_command(root)
    assert ("bridge", "exec") in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.stdout, (path, result.stdout)
    help_line = next(
        line for line in run("workflow", "validate", "--help").stdout.splitlines() if "--json" in line
    )
    assert help_line.split("--json", 1)[1].strip().startswith("Print")


def test_completion_is_offered_at_the_root_only() -> None:
    assert "--install-completion" in run("--help").stdout
    assert "--install-completion" not in run("emulator", "--help").stdout


@pytest.mark.parametrize(("typo", "meant"), [("simulat", "simulate"), ("brige", "bridge"), ("admn", "admin")])
def test_a_mistyped_command_gets_a_suggestion(typo: str, meant: str) -> None:
    result = run(typo)
    assert result.returncode == 2
    assert f"No such command '{typo}'. Did you mean '{meant}'" in " ".join(
        result.stderr.replace("│", " ").split()
    )
    nested = run("bridge", "exe")
    assert "Did you mean 'exec'?" in nested.stderr
