"""Fixtures of the bridge tests: a virtual phone that the real adb and uiautomator2 drive.

The emulator runs in this process (a background thread) and announces itself to the
machine's one adb server (Debian's, `ADBUTILS_ADB_PATH=/usr/bin/adb`); uiautomator2 then
connects to it by serial exactly as it would to a phone. Console ports come from a range
of our own, probed for being free, so that other suites' emulators are not disturbed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bridge.server_process import ServerProcess, start_server
from tests.ports import free_console_port as pick_console_port

os.environ.setdefault("ADBUTILS_ADB_PATH", "/usr/bin/adb")

ADB = os.environ["ADBUTILS_ADB_PATH"]
# Even console ports for the bridge's emulators (adb port = console port + 1).
PORT_RANGE = range(5700, 5800, 2)


def adb_missing_reason() -> str | None:
    if not (Path(ADB).exists() or shutil.which(ADB)):
        return f"the adb binary {ADB} is missing: install Debian's adb (make system-deps)"
    return None


def free_console_port() -> int:
    """An even port P with P and P+1 free (the emulator's console and adb ports)."""
    return pick_console_port(PORT_RANGE)


@pytest.fixture(scope="session")
def adb_server() -> str:
    """The adb binary, with its server running (the emulator announces itself to it)."""
    reason = adb_missing_reason()
    if reason:
        pytest.skip(reason)
    subprocess.run([ADB, "start-server"], check=True, capture_output=True, timeout=30)
    return ADB


def start_emulator(apps: object) -> object:
    """Start an `emulator.Emulator` over `apps` (model, path or None) on a free port; wait for adb."""
    from emulator.runner import Emulator

    last: Exception | None = None
    for _ in range(3):  # a port may be taken between the probe and the bind
        emu = Emulator(apps, console_port=free_console_port())  # type: ignore[arg-type]
        emu.start()
        try:
            emu.wait_ready(timeout=15)
        except Exception as exc:
            emu.stop()
            last = exc
            continue
        return emu
    raise RuntimeError(f"the emulator did not start: {last}")


@pytest.fixture(scope="module")
def sample_emulator(adb_server: str) -> Iterator[object]:
    """One emulator with the sample apps for a test module."""
    emu = start_emulator(None)
    try:
        yield emu
    finally:
        emu.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A phoneflow server process on a SQLite file, with an account, for a test module."""
    process = start_server(tmp_path_factory.mktemp("server"))
    try:
        yield process
    finally:
        process.stop()
