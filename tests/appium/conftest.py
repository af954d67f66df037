"""Fixtures of the Appium tests: a real Appium 3 server (with the UiAutomator2 driver) and virtual phones.

The server comes from this folder's `package.json`/`package-lock.json` (`appium@3.8.0`,
`appium-uiautomator2-driver@8.7.0`), installed into `node_modules/` by `make system-deps`
(`scripts/system-deps.sh`); `APPIUM_HOME` is this folder. One server runs for the whole test
session, on a free port, with `ANDROID_HOME` at a folder whose `platform-tools/adb` is the
machine's adb, so it drives the virtual phones through the same adb server as the rest of the
suite. Its log is written to the session's temporary folder and shown when it fails to start.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.bridge.conftest import ADB, adb_server
from tests.ports import free_console_port

__all__ = ["adb_server"]

APPIUM_DIR = Path(__file__).resolve().parent
APPIUM_BIN = APPIUM_DIR / "node_modules" / ".bin" / "appium"
NODE_MODULES = APPIUM_DIR / "node_modules"
# Even console ports for the emulators of these tests (the other suites use 5554–5582, 5700–5799, 5900–5998).
PORT_RANGE = range(5800, 5900, 2)


def appium_missing_reason() -> str | None:
    if not APPIUM_BIN.exists():
        return f"the Appium server is not installed in {NODE_MODULES}: run `make system-deps` (npm ci there)"
    if shutil.which("node") is None:
        return "node is not installed: run `make system-deps`"
    return None


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def android_home(root: Path) -> Path:
    """A folder the Appium driver takes for an Android SDK: `platform-tools/adb` is the machine's adb."""
    tools = root / "android" / "platform-tools"
    tools.mkdir(parents=True, exist_ok=True)
    (tools / "adb").symlink_to(Path(shutil.which(ADB) or ADB).resolve())
    return root / "android"


def forget_a_moved_manifest(appium_home: Path) -> None:
    """Remove Appium's cached manifest of installed drivers when it names them at another place (the
    checkout was moved or copied, or another checkout shares these node_modules): Appium would take
    the stale path and find no driver. It writes the manifest again from node_modules at its start."""
    manifest = appium_home / "node_modules" / ".cache" / "appium" / "extensions.yaml"
    if not manifest.is_file():
        return
    here = str(appium_home / "node_modules")
    for line in manifest.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.strip().partition(":")
        if key == "installPath" and not value.strip().strip("'\"").startswith(here):
            manifest.unlink()
            return


def start_appium(
    home: Path, appium_home: Path, log: Path, timeout_s: float = 60
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `appium` on a free loopback port and wait until `/status` answers; (process, url)."""
    forget_a_moved_manifest(appium_home)
    port = free_tcp_port()
    env = dict(os.environ, APPIUM_HOME=str(appium_home), ANDROID_HOME=str(home), ANDROID_SDK_ROOT=str(home))
    command = [str(APPIUM_BIN), "--address", "127.0.0.1", "--port", str(port), "--log-no-colors"]
    command += ["--log-level", "debug", "--log", str(log)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/status", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    process.wait()
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
    raise RuntimeError(
        f"the Appium server did not answer on {url} within {timeout_s} s; its log ends:\n{tail}"
    )


def stop_appium(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def appium_url(adb_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Appium server for the test session (skips, saying why, when it is not installed)."""
    reason = appium_missing_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("appium")
    process, url = start_appium(android_home(root), APPIUM_DIR, root / "appium.log")
    try:
        yield url
    finally:
        stop_appium(process)


def start_emulator(apps: object = None) -> object:
    """An `emulator.Emulator` over `apps` on a free console port of this suite's range; waits for adb."""
    from emulator.runner import Emulator

    last: Exception | None = None
    for _ in range(3):
        emu = Emulator(apps, console_port=free_console_port(PORT_RANGE))  # type: ignore[arg-type]
        emu.start()
        try:
            emu.wait_ready(timeout=15)
        except Exception as exc:
            emu.stop()
            last = exc
            continue
        return emu
    raise RuntimeError(f"the emulator did not start: {last}")
