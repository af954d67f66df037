"""The interpreter's exceptions, split by what the caller can do.

    PhoneflowError
    ├── WorkflowError            fix the workflow (it does not load or is not valid)
    ├── AppModelError            fix the app model JSON
    └── DeviceError              fix or reconnect the device; the run cannot go on
        ├── AppNotInstalledError     install the app (the engine turns it into a step failure)
        └── AppNotLaunchableError    installed, but it has no launcher activity (the home screen,
                                     a system package): launch another package

Step failures (no element, HTTP 503, denied package) are not exceptions that leave
the engine: they become trace events with a message.
"""

from __future__ import annotations


class PhoneflowError(Exception):
    """Base of every error phoneflow raises on purpose."""


class WorkflowError(PhoneflowError):
    """The workflow definition cannot be used as it is."""


class AppModelError(PhoneflowError):
    """The app model JSON is not valid."""


class DeviceError(PhoneflowError):
    """The device did not do what was asked (disconnected, crashed, refused)."""


class AppNotInstalledError(DeviceError):
    def __init__(self, package: str) -> None:
        super().__init__(f"app not installed: {package}")
        self.package = package


class AppNotLaunchableError(DeviceError):
    """The package is installed but has no launcher activity, so nothing can be started."""

    def __init__(self, package: str) -> None:
        super().__init__(f"app has no launcher activity: {package}")
        self.package = package
