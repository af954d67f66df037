"""Which driver serves a phone: `open_device`, by `--driver` / `PHONEFLOW_BRIDGE_DRIVER`.

    uiautomator2   `U2Device`: the uiautomator2 library through this machine's adb (the default)
    appium         `AppiumDevice`: any Appium server with the UiAutomator2 driver (`--appium-url`)

Both are `BridgeDevice`s: the engine's `Device` protocol, plus what the agent needs around a
run (the raw hierarchy as failure context, and `close()` to free the phone).
"""

from __future__ import annotations

from typing import Literal, Protocol

from device_bridge.settings import BridgeSettings
from interpreter.device import Device

DriverName = Literal["uiautomator2", "appium"]
DRIVERS: tuple[DriverName, ...] = ("uiautomator2", "appium")


class BridgeDevice(Device, Protocol):
    def hierarchy_xml(self) -> str:
        """The phone's raw window hierarchy (kept with a failed step)."""
        ...

    def close(self) -> None:
        """End the driver's session on the phone and free the serial's lock."""
        ...

    def ping(self) -> None:
        """One cheap round trip to the phone; a `DeviceError` when it does not answer."""
        ...


def open_device(serial: str, settings: BridgeSettings) -> BridgeDevice:
    """Connect to `serial` with the driver the settings name. Raises the driver's `BridgeError`s."""
    if settings.driver == "appium":
        from device_bridge.appium_driver import AppiumDevice

        return AppiumDevice(
            serial,
            lock_dir=settings.lock_dir,
            server_url=settings.appium_url,
            capabilities=settings.appium_capabilities,
        )
    from device_bridge.driver import U2Device

    return U2Device(serial, lock_dir=settings.lock_dir)
