"""The root `phoneflow` command: every part's sub-command is reachable, help and errors are clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
