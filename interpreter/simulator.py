"""`SimulatedDevice`: the `Device` protocol over a `PhoneState` running the app model.

The phone's time is the run's clock (`clock.monotonic`), so with a `VirtualClock` the
engine's waits make delayed widgets appear and toasts expire without any real waiting.
Like every driver it does mechanics only: it raises `AppNotInstalledError`,
`AppNotLaunchableError` and nothing else of its own, and writes no trace messages.
"""

from __future__ import annotations

import json

from interpreter.appmodel import SYSTEM_PACKAGES, AppModel, PhoneState
from interpreter.clock import Clock
from interpreter.device import Artifact
from interpreter.errors import AppNotLaunchableError
from interpreter.hierarchy import UiNode
from interpreter.keys import keycode
from interpreter.matcher import visible_texts


class SimulatedDevice:
    """A phone that exists only as a `PhoneState`; implements `interpreter.device.Device`."""

    def __init__(self, model_or_state: AppModel | PhoneState, clock: Clock, serial: str = "sim-1") -> None:
        if isinstance(model_or_state, PhoneState):
            self.state = model_or_state
        else:
            self.state = PhoneState(model_or_state, now=clock.monotonic)
        self.clock = clock
        self._serial = serial
        self._screenshots = 0

    @property
    def serial(self) -> str:
        return self._serial

    def screen_size(self) -> tuple[int, int]:
        return (self.state.width, self.state.height)

    def launch_app(self, package: str, stop_first: bool = False) -> None:
        """Bring the app to the front (cold start after `stop_first`).

        `AppNotInstalledError` for a package the phone does not have; `AppNotLaunchableError` for
        the launcher and the system packages (`SYSTEM_PACKAGES`), which have no launcher activity.
        """
        if not self.state.model.has(package) and package in SYSTEM_PACKAGES:
            raise AppNotLaunchableError(package)
        if stop_first and self.state.is_installed(package):
            self.state.stop(package)
        self.state.launch(package)

    def stop_app(self, package: str) -> None:
        self.state.stop(package)

    def foreground_package(self) -> str | None:
        return self.state.foreground_package()

    def hierarchy(self) -> UiNode:
        return self.state.hierarchy()

    def tap(self, x: int, y: int) -> None:
        self.state.tap(x, y)

    def input_text(self, text: str, clear: bool = False) -> None:
        if clear:
            self.state.clear_text()
        self.state.input_text(text)

    def press_key(self, key: str) -> None:
        keycode(key)  # an unknown key fails here as on every driver
        self.state.press_key(key)

    def swipe(self, x1: int, y1: int, x2: int, y2: int, duration_ms: int = 250) -> None:
        self.state.swipe(x1, y1, x2, y2)

    def screenshot(self) -> Artifact:
        """A JSON description of the screen (no pixels: the interpreter renders nothing)."""
        self._screenshots += 1
        description = {
            "serial": self._serial,
            "foregroundPackage": self.state.foreground_package(),
            "activity": self.state.foreground_activity(),
            "texts": visible_texts(self.state.hierarchy()),
        }
        return Artifact(
            name=f"screenshot-{self._screenshots}.json",
            content_type="application/json",
            data=json.dumps(description, ensure_ascii=False).encode("utf-8"),
        )
