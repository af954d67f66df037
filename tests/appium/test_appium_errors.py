"""What a user sees when the Appium side is missing: no server, no UiAutomator2 driver, no such phone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from device_bridge.appium_driver import AppiumDevice
from device_bridge.errors import AppiumSessionError
from tests.appium.conftest import (
    android_home,
    appium_missing_reason,
    free_tcp_port,
    start_appium,
    start_emulator,
    stop_appium,
)

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120)]


def test_no_server_says_how_to_start_one(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_tcp_port()}"
    with pytest.raises(AppiumSessionError) as raised:
        AppiumDevice("emulator-5554", lock_dir=tmp_path, server_url=url)
    message = str(raised.value)
    assert f"cannot reach the Appium server at {url}" in message
    assert "appium driver install uiautomator2" in message
    assert "--appium-url" in message
    # The serial's lock was let go: another try (or another bridge) can take it.
    with pytest.raises(AppiumSessionError):
        AppiumDevice("emulator-5554", lock_dir=tmp_path, server_url=url)


@pytest.fixture
def bare_appium(adb_server: str, tmp_path: Path) -> Iterator[str]:
    """A real Appium server whose APPIUM_HOME has no driver installed."""
    reason = appium_missing_reason()
    if reason:
        pytest.skip(reason)
    empty_home = tmp_path / "appium-home"
    empty_home.mkdir()
    process, url = start_appium(android_home(tmp_path), empty_home, tmp_path / "appium.log")
    try:
        yield url
    finally:
        stop_appium(process)


def test_a_server_without_the_driver_says_to_install_it(bare_appium: str, tmp_path: Path) -> None:
    with pytest.raises(AppiumSessionError) as raised:
        AppiumDevice("emulator-5554", lock_dir=tmp_path, server_url=bare_appium)
    message = str(raised.value)
    assert f"the Appium server at {bare_appium} refused a session on emulator-5554" in message
    assert "appium driver install uiautomator2" in message


def test_an_unknown_device_says_to_check_adb(appium_url: str, tmp_path: Path) -> None:
    emu: Any = start_emulator()
    serial = emu.serial
    emu.stop()  # a serial that no adb lists any more
    with pytest.raises(AppiumSessionError) as raised:
        AppiumDevice(serial, lock_dir=tmp_path, server_url=appium_url)
    message = str(raised.value)
    assert f"refused a session on {serial}" in message
    assert "adb devices" in message
