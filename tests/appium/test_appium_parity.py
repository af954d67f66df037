"""The golden cases on the bridge's Appium driver: `AppiumDevice` → a real Appium server → the virtual device.

Every case must give exactly its `trace.json`, as on the simulator and on the uiautomator2
driver (`tests/bridge/test_parity.py`). Cases are ordered by app model so one emulator and one
Appium session serve every case of a model; between cases each app of the model is stopped and
the phone sent home, through Appium, as the uiautomator2 parity test does through adb.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from device_bridge.appium_driver import AppiumDevice
from interpreter.clock import RealClock
from tests.appium.conftest import start_emulator
from tests.bridge.test_parity import CASES, _model_key
from tests.golden import (
    GoldenCase,
    comparable,
    difference,
    golden_http_server,
    load_case,
    reset_phone,
    run_case,
)

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(600)]


class AppiumPool:
    """The emulator and the Appium session of the current app model; one at a time."""

    def __init__(self, url: str, lock_dir: Path) -> None:
        self.url = url
        self.lock_dir = lock_dir
        self.key: str | None = None
        self.emulator: Any = None
        self.device: AppiumDevice | None = None

    def device_for(self, case: GoldenCase) -> AppiumDevice:
        key = _model_key(case.path)
        if key != self.key or self.device is None:
            self.close()
            self.emulator = start_emulator(case.app_model())
            self.device = AppiumDevice(self.emulator.serial, lock_dir=self.lock_dir, server_url=self.url)
            self.key = key
        else:
            reset_phone(self.device, case)
        return self.device

    def close(self) -> None:
        if self.device is not None:
            self.device.close()
        if self.emulator is not None:
            self.emulator.stop()
        self.device = self.emulator = self.key = None


@pytest.fixture(scope="module")
def pool(appium_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppiumPool]:
    devices = AppiumPool(appium_url, tmp_path_factory.mktemp("appium-locks"))
    try:
        yield devices
    finally:
        devices.close()


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    with golden_http_server() as base:
        yield base


@pytest.mark.parametrize("case_path", CASES, ids=[path.name for path in CASES])
def test_golden_case_on_appium(case_path: Path, pool: AppiumPool, http_base: str) -> None:
    case = load_case(case_path)
    assert case.expected is not None, f"{case.name} has no trace.json: run make golden-update"
    base = http_base if case.uses_http else None
    on_appium = comparable(run_case(case, pool.device_for(case), RealClock(), base))
    diff = difference(case, on_appium)
    assert diff is None, f"bridge + Appium + emulator differs from trace.json:\n{diff}"
