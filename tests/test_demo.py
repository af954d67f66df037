"""`make demo` end to end: the quick start's main job runs, reports success, and cleans up."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "demo.py"

pytestmark = pytest.mark.emulator


def test_demo_runs_the_sample_workflow_on_the_virtual_phone_and_cleans_up() -> None:
    if shutil.which("adb") is None:
        pytest.skip("Debian's adb is not installed: `make test` installs it when run as root")
    before = set((ROOT / ".phoneflow").glob("demo-*")) if (ROOT / ".phoneflow").exists() else set()
    proc = subprocess.Popen(
        [sys.executable, str(DEMO)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
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
        proc.send_signal(signal.SIGINT)
        lines.append(proc.stdout.read())
        proc.wait(timeout=60)
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
    assert "dashboard      http://127.0.0.1:" in output
    assert proc.returncode == 0, output
    after = set((ROOT / ".phoneflow").glob("demo-*"))
    assert after <= before, f"the demo left {sorted(after - before)} behind"
