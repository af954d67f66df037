"""The bridge's exceptions, split by what the caller can do.

    BridgeError                      (base; every error the bridge raises on purpose)
    ├── BridgeConfigError            fix the command line or the settings
    ├── NotPairedError               pair the device first (`phoneflow bridge pair`)
    ├── DeviceBusyError              stop the other bridge that serves this serial
    ├── DeviceUnavailableError       connect / restart the phone (adb or the u2 server failed)
    │   └── AppiumSessionError       start / fix the Appium server (unreachable, session refused)
    └── ServerError                  the server did not answer as the contract says
        ├── ServerUnreachableError   retry later (network down, 5xx): the outbox keeps the reports
        └── ServerRefusedError       fix the request or the credentials (4xx: bad code, revoked token)

Driver errors that the engine understands (`interpreter.errors.AppNotInstalledError`,
`interpreter.errors.DeviceError`) are raised as they are, so the engine turns them into
step failures with its own words; `DeviceUnavailableError` is one of those `DeviceError`s.
"""

from __future__ import annotations

from interpreter.errors import DeviceError


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class BridgeConfigError(BridgeError):
    """A setting, option or file given to the bridge cannot be used."""


class NotPairedError(BridgeError):
    def __init__(self, serial: str, state_path: str) -> None:
        super().__init__(
            f"device {serial} is not paired with any server (state: {state_path}): "
            f"run `phoneflow bridge pair --server URL --code CODE --serial {serial}` first"
        )
        self.serial = serial


class DeviceBusyError(BridgeError):
    def __init__(self, serial: str, lock_path: str, holder: str) -> None:
        super().__init__(
            f"device {serial} is already served by another bridge ({holder}; lock {lock_path}): "
            "a phone has one UiAutomation session, so stop that bridge first"
        )
        self.serial = serial
        self.lock_path = lock_path


class DeviceUnavailableError(BridgeError, DeviceError):
    """adb or the uiautomator2 server failed; the run cannot go on on this device."""


class AppiumSessionError(DeviceUnavailableError):
    """The Appium server could not be reached, or refused to open a session on the phone."""


class ServerError(BridgeError):
    """The server did not answer as the contract says."""


class ServerUnreachableError(ServerError):
    """Network failure, timeout or 5xx: try again later."""


class ServerRefusedError(ServerError):
    """A 4xx answer: the request or the credentials must change before it can succeed."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code
