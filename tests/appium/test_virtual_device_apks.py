"""The virtual device takes the Appium APKs through the real `adb install` and runs the UiAutomator2 server.

No Appium server here: Debian's adb CLI installs the APKs that the `appium-uiautomator2-driver`
npm package ships, and `am instrument -w` starts the in-device server, which a plain HTTP client
then reaches through `adb forward` as the driver does.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.appium.conftest import NODE_MODULES, appium_missing_reason, free_tcp_port, start_emulator
from tests.bridge.conftest import ADB

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120)]

DRIVER_MODULES = NODE_MODULES / "appium-uiautomator2-driver" / "node_modules"
SETTINGS = DRIVER_MODULES / "io.appium.settings"
SERVER = DRIVER_MODULES / "appium-uiautomator2-server"
INSTRUMENTATION = "io.appium.uiautomator2.server.test/androidx.test.runner.AndroidJUnitRunner"


def adb(serial: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ADB, "-s", serial, *args], capture_output=True, text=True, timeout=timeout)


def npm_version(package_dir: Path) -> str:
    return str(json.loads((package_dir / "package.json").read_text())["version"])


@pytest.fixture(scope="module")
def phone(adb_server: str) -> Iterator[Any]:
    reason = appium_missing_reason()
    if reason:
        pytest.skip(reason)
    emu = start_emulator()
    try:
        yield emu
    finally:
        emu.stop()  # type: ignore[attr-defined]


def test_adb_install_records_the_package_its_manifest_names(phone: Any) -> None:
    apk = SETTINGS / "apks" / "settings_apk-debug.apk"
    done = adb(phone.serial, "install", "-g", str(apk))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout
    listed = adb(phone.serial, "shell", "pm", "list", "packages", "-3").stdout.split()
    assert "package:io.appium.settings" in listed
    dump = adb(phone.serial, "shell", "dumpsys", "package", "io.appium.settings").stdout
    assert "Package [io.appium.settings]" in dump
    # The npm package's version is the APK's versionName: read from the APK, not made up.
    assert f"versionName={npm_version(SETTINGS)}" in dump
    assert "android.permission." in dump  # the manifest's permissions, granted by -g
    codes = adb(phone.serial, "shell", "cmd", "package", "list", "packages", "--show-versioncode").stdout
    assert "package:io.appium.settings versionCode:" in codes


def test_an_installed_apk_can_be_removed_and_a_non_apk_is_refused(phone: Any, tmp_path: Path) -> None:
    apk = SETTINGS / "apks" / "settings_apk-debug.apk"
    assert adb(phone.serial, "install", str(apk)).returncode == 0
    removed = adb(phone.serial, "uninstall", "io.appium.settings")
    assert "Success" in removed.stdout
    assert "io.appium.settings" not in adb(phone.serial, "shell", "pm", "list", "packages").stdout
    fake = tmp_path / "notes.apk"
    fake.write_text("not a zip")
    refused = adb(phone.serial, "install", str(fake))
    assert refused.returncode != 0
    assert "INSTALL_PARSE_FAILED_NOT_APK" in refused.stdout + refused.stderr
    assert "not an APK" in refused.stdout + refused.stderr
    app_model = adb(phone.serial, "uninstall", "com.example.shop")
    assert "app model" in app_model.stdout + app_model.stderr


def test_am_instrument_refuses_what_is_not_installed(phone: Any) -> None:
    done = adb(
        phone.serial,
        "shell",
        "am",
        "instrument",
        "-w",
        "com.example.tests/androidx.test.runner.AndroidJUnitRunner",
    )
    assert "INSTRUMENTATION_FAILED" in done.stdout
    assert "Unable to find instrumentation info" in done.stdout


def _status(url: str, deadline_s: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            answer = httpx.get(f"{url}/status", timeout=2)
            return dict(answer.json())
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_am_instrument_serves_the_uiautomator2_server_until_the_session_ends(phone: Any) -> None:
    serial = phone.serial
    for apk in (
        "appium-uiautomator2-server-debug-androidTest.apk",
        f"appium-uiautomator2-server-v{npm_version(SERVER)}.apk",
    ):
        assert "Success" in adb(serial, "install", "-r", str(SERVER / "apks" / apk)).stdout
    listed = adb(serial, "shell", "pm", "list", "instrumentation").stdout
    assert f"instrumentation:{INSTRUMENTATION} (target=io.appium.uiautomator2.server)" in listed
    port = free_tcp_port()
    assert adb(serial, "forward", f"tcp:{port}", "tcp:6790").returncode == 0
    runner = subprocess.Popen(
        [ADB, "-s", serial, "shell", "am", "instrument", "-w", INSTRUMENTATION],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        status = _status(url)
        assert status["value"]["ready"] is True
        assert status["value"]["build"]["versionName"] == npm_version(SERVER)
        assert "io.appium.uiautomator2.server" in adb(serial, "shell", "ps", "-A").stdout
        created = httpx.post(f"{url}/session", json={"capabilities": {"firstMatch": [{}], "alwaysMatch": {}}})
        session = created.json()["sessionId"]
        source = httpx.get(f"{url}/session/{session}/source").json()["value"]
        assert source.startswith("<?xml")
        assert 'class="hierarchy"' in source
        missing = httpx.post(f"{url}/session/{session}/element", json={"strategy": "id", "selector": "nope"})
        assert missing.status_code == 404
        assert missing.json()["value"]["error"] == "no such element"
        gone = httpx.get(f"{url}/session/not-this-one/source")
        assert gone.status_code == 404
        assert gone.json()["value"]["error"] == "invalid session id"
        assert httpx.delete(f"{url}/session/{session}").status_code == 200
        out, _ = runner.communicate(timeout=20)  # deleting the session ends the instrumentation
        assert "INSTRUMENTATION_CODE: -1" in out
        assert "io.appium.uiautomator2.server" not in adb(serial, "shell", "ps", "-A").stdout
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        adb(serial, "forward", "--remove", f"tcp:{port}")


def test_force_stop_ends_the_instrumentation(phone: Any) -> None:
    serial = phone.serial
    for apk in (
        "appium-uiautomator2-server-debug-androidTest.apk",
        f"appium-uiautomator2-server-v{npm_version(SERVER)}.apk",
    ):
        assert "Success" in adb(serial, "install", "-r", str(SERVER / "apks" / apk)).stdout
    port = free_tcp_port()
    adb(serial, "forward", f"tcp:{port}", "tcp:6790")
    runner = subprocess.Popen(
        [ADB, "-s", serial, "shell", "am", "instrument", "-w", INSTRUMENTATION],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        _status(f"http://127.0.0.1:{port}")
        adb(serial, "shell", "am", "force-stop", "io.appium.uiautomator2.server")
        runner.communicate(timeout=20)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/status", timeout=2)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        adb(serial, "forward", "--remove", f"tcp:{port}")
