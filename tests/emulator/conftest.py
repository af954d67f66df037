"""Fixtures for the emulator tests: Debian's adb, its one shared server, and virtual devices on free ports.

- `adb` (session): the adb binary (skips the test when it is not installed) with its server
  on 5037 running; `ADBUTILS_ADB_PATH` points adbutils and uiautomator2 at it.
- `make_emulator` (function): `make_emulator(apps=None, ports=SCAN_PORTS)` starts an
  `emulator.Emulator` on a free even console port from `ports`, waits until adb sees it, and
  stops it after the test.
- `emulator` (function): one emulator over the sample apps.
- `adb_run(*args, serial=None)`: run the adb CLI and return the completed process.

Other suites use console ports 5580–5582 and 5700–5799; these tests take 5554–5578 (inside
adb's scan) and 5900–5998 (outside it, found by the announcement only).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emulator import Emulator, EmulatorError
from interpreter.appmodel import AppModel
from tests.ports import free_console_port as pick_console_port

ADB = os.environ.get("ADBUTILS_ADB_PATH") or shutil.which("adb") or "/usr/bin/adb"
SCAN_PORTS = range(5554, 5580, 2)
OUTSIDE_SCAN_PORTS = range(5900, 6000, 2)

MakeEmulator = Callable[..., Emulator]


def free_console_port(ports: range = SCAN_PORTS) -> int:
    """An even port N with N and N+1 free in `ports` (default: where adb's scan finds emulators)."""
    return pick_console_port(ports)


def adb_run(*args: str, serial: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The adb CLI, as a person would type it (`-s SERIAL` first when given)."""
    prefix = ["-s", serial] if serial else []
    return subprocess.run([ADB, *prefix, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def adb() -> str:
    if not Path(ADB).exists():
        pytest.skip(f"Debian's adb is not installed at {ADB}: run `make system-deps`")
    os.environ["ADBUTILS_ADB_PATH"] = ADB
    subprocess.run([ADB, "start-server"], check=True, capture_output=True, timeout=30)
    return ADB


def start_emulator(
    apps: AppModel | Path | None = None, ports: range = SCAN_PORTS, **kwargs: object
) -> Emulator:
    """Start an emulator on a free port (retrying when another process takes the port first)."""
    last: Exception | None = None
    for _ in range(5):
        emu = Emulator(apps, console_port=free_console_port(ports), **kwargs)  # type: ignore[arg-type]
        emu.start()
        try:
            emu.wait_ready(timeout=10)
        except EmulatorError as exc:
            emu.stop()
            last = exc
            continue
        return emu
    raise RuntimeError(f"no emulator could start: {last}")


@pytest.fixture
def make_emulator(adb: str) -> Iterator[MakeEmulator]:
    started: list[Emulator] = []

    def make(apps: AppModel | Path | None = None, ports: range = SCAN_PORTS, **kwargs: object) -> Emulator:
        emu = start_emulator(apps, ports, **kwargs)
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def emulator(make_emulator: MakeEmulator) -> Emulator:
    return make_emulator()
