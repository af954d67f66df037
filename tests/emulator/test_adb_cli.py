"""`phoneflow emulator start` in the foreground: it prints its serial, adb sees it, Ctrl-C stops it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.emulator.conftest import adb_run, free_console_port

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(90)]


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "phoneflow", "emulator", "start", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_start_runs_until_interrupted(adb: str, tmp_path: Path) -> None:
    port = free_console_port()
    apps = tmp_path / "apps.json"
    apps.write_text(
        json.dumps(
            {
                "schemaVersion": 1,
                "apps": [
                    {
                        "package": "com.example.solo",
                        "label": "Solo",
                        "startScreen": "main",
                        "screens": [
                            {"id": "main", "activity": ".Main", "widgets": [{"id": "t", "text": "Hi"}]}
                        ],
                    }
                ],
            }
        )
    )
    process = start_cli("--apps", str(apps), "--port", str(port))
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith(f"emulator-{port} is running")
        assert "com.example.solo" in first
        deadline = time.monotonic() + 10
        while f"emulator-{port}\tdevice" not in adb_run("devices").stdout:
            assert time.monotonic() < deadline, "adb did not list the emulator"
            time.sleep(0.1)
        packages = adb_run("shell", "pm list packages -3", serial=f"emulator-{port}").stdout
        assert packages == "package:com.example.solo\n"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert f"emulator-{port} stopped" in out


def test_bad_arguments_say_what_to_fix(tmp_path: Path) -> None:
    odd = start_cli("--port", "5555")
    _, err = odd.communicate(timeout=60)
    assert odd.returncode == 2
    assert "even number" in err
    missing = start_cli("--apps", str(tmp_path / "none.json"))
    _, err = missing.communicate(timeout=60)
    assert missing.returncode == 2
    assert "cannot read app model" in err
