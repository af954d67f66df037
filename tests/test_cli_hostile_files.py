"""The command lines on hostile input: a file nested 100,000 deep is refused in words, never a
RecursionError; text no terminal can carry (a lone surrogate) is printed as its escape, never a crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from interpreter.simulate_cli import simulate_app


def _phoneflow(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phoneflow", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={"PYTHONIOENCODING": "utf-8", "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
        check=False,
    )


def test_a_file_nested_100000_deep_is_refused_in_words(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    simulated = CliRunner().invoke(simulate_app, [str(deep)])
    assert simulated.exit_code not in (0, 1), simulated.output
    assert simulated.exception is None or isinstance(simulated.exception, SystemExit)
    assert "nested too deeply" in simulated.output
    done = _phoneflow(
        "bridge", "exec", deep, "--serial", "emulator-5554", "--state-dir", "state", cwd=tmp_path
    )
    assert done.returncode not in (0, 1), done.stderr
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "nested too deeply" in done.stderr


def test_inputs_nested_too_deep_or_holding_a_lone_surrogate_are_refused(tmp_path: Path) -> None:
    workflow = tmp_path / "w.json"
    workflow.write_text('{"name": "w", "nodes": []}')
    for inputs in ('{"k": "\\ud800"}', '{"a":' * 100 + "1" + "}" * 100):
        done = CliRunner().invoke(simulate_app, [str(workflow), "--inputs", inputs])
        assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
        assert "--inputs cannot be used" in done.output


def test_unprintable_text_is_printed_as_its_escape(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from phoneflow.cli import app\n"
        "from client.output import print_json, print_table\n"
        "try:\n"
        "    app(['workflow', 'validate', '--help'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "print_json({'inputs': {'k': '\\ud800'}})\n"
        "print_table(None, ['input'], [['a\\ud800b']], 'none')\n"
        "print('done', 'x\\ud800', file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PYTHONIOENCODING": "utf-8", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "100"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"k": "\\ud800"' in done.stdout
    assert "a\\ud800b" in done.stdout
    assert "done x\\ud800" in done.stderr
