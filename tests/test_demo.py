"""`make demo` end to end: the quick start's main job runs, reports success, and cleans up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "demo.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_ports_can_be_chosen_and_a_busy_one_is_refused_saying_how() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(DEMO), "--port", str(port)],
            capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr
    assert "--port / PHONEFLOW_DEMO_PORT" in result.stderr
    odd = subprocess.run(
        [sys.executable, str(DEMO), "--emulator-port", "5555"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert odd.returncode == 1
    assert "give an even port from 5554 to 5584" in odd.stderr
    help_text = subprocess.run(
        [sys.executable, str(DEMO), "--help"], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    assert "PHONEFLOW_DEMO_PORT" in help_text
    assert "PHONEFLOW_DEMO_EMULATOR_PORT" in help_text


@pytest.mark.emulator
def test_demo_runs_the_sample_workflow_on_the_virtual_phone_and_cleans_up() -> None:
    if shutil.which("adb") is None:
        pytest.skip("Debian's adb is not installed: `make test` installs it when run as root")
    before = set((ROOT / ".phoneflow").glob("demo-*")) if (ROOT / ".phoneflow").exists() else set()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(DEMO)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PHONEFLOW_DEMO_PORT": str(port)},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        # read up to the last line of its summary, then stop it as a person would (Ctrl-C)
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
                break
        # what the summary offers next: the CLI, signed in to the demo server
        listed = subprocess.run(
            [sys.executable, "-m", "phoneflow", "runs", "list", "--json"],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "PHONEFLOW_PROFILE": "demo"},
        )  # fmt: skip
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            ps = subprocess.run(["ps", "-ef", "--forest"], capture_output=True, text=True, check=False)
            tree = ps.stdout
            pytest.fail(
                f"the demo did not stop within 60 s of Ctrl-C.\nits output:\n{''.join(lines)}\n"
                f"processes:\n{tree}"
            )
        lines.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
    output = "".join(lines)
    assert "phoneflow is up" in output, output
    assert ": success" in output, output
    for step in ("open", "sign_in", "new", "save", "check"):
        assert f" {step} " in output, output
    assert f"dashboard      http://127.0.0.1:{port}/" in output
    assert proc.returncode == 0, output
    assert listed.returncode == 0, listed.stderr
    assert [run["status"] for run in json.loads(listed.stdout)] == ["success"]
    assert "export PHONEFLOW_PROFILE=demo" in output
    signed_out = subprocess.run(
        [sys.executable, "-m", "phoneflow", "runs", "list", "--profile", "demo"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert signed_out.returncode == 5, "the demo left its CLI profile behind"
    after = set((ROOT / ".phoneflow").glob("demo-*"))
    assert after <= before, f"the demo left {sorted(after - before)} behind"
