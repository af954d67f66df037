"""`SimulatedDevice`: the `Device` protocol over a `PhoneState` running the app model.

The phone's time is the run's clock (`clock.monotonic`), so with a `VirtualClock` the
engine's waits make delayed widgets appear and toasts expire without any real waiting.
Like every driver it does mechanics only: it raises `AppNotInstalledError`,
`AppNotLaunchableError` and nothing else of its own, and writes no trace messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from interpreter.appmodel import SYSTEM_PACKAGES, AppModel, PhoneState
from interpreter.clock import Clock, VirtualClock
from interpreter.device import Artifact
from interpreter.device_costs import DEVICE_COSTS_MS
from interpreter.errors import AppNotLaunchableError
from interpreter.hierarchy import UiNode
from interpreter.keys import keycode
from interpreter.matcher import visible_texts


class SimulatedDevice:
    """A phone that exists only as a `PhoneState`; implements `interpreter.device.Device`."""

    def __init__(
        self,
        model_or_state: AppModel | PhoneState,
        clock: Clock,
        serial: str = "sim-1",
        costs_ms: Mapping[str, int] | None = None,
    ) -> None:
        if isinstance(model_or_state, PhoneState):
            self.state = model_or_state
        else:
            self.state = PhoneState(model_or_state, now=clock.monotonic)
        self.clock = clock
        self._serial = serial
        self._screenshots = 0
        # On a virtual clock each call costs what it costs a phone (`interpreter.device_costs`); a
        # real clock already runs on its own.
        if costs_ms is None:
            costs_ms = DEVICE_COSTS_MS if isinstance(clock, VirtualClock) else {}
        self._costs_s = {name: ms / 1000.0 for name, ms in costs_ms.items()}

    def _spend(self, call: str) -> None:
        cost = self._costs_s.get(call)
        if cost:
            self.clock.sleep(cost)

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
        self._spend("launch")
        if not self.state.model.has(package) and package in SYSTEM_PACKAGES:
            raise AppNotLaunchableError(package)
        if stop_first and self.state.is_installed(package):
            self.state.stop(package)
        self.state.launch(package)

    def stop_app(self, package: str) -> None:
        self._spend("stop")
        self.state.stop(package)

    def foreground_package(self) -> str | None:
        self._spend("foreground")
        return self.state.foreground_package()

    def foreground_activity(self) -> str | None:
        self._spend("foreground")
        return self.state.foreground_activity()

    def hierarchy(self) -> UiNode:
        self._spend("hierarchy")
        return self.state.hierarchy()

    def tap(self, x: int, y: int) -> None:
        self._spend("tap")
        self.state.tap(x, y)

    def input_text(self, text: str, clear: bool = False) -> None:
        self._spend("input_text")
        if clear:
            self.state.clear_text()
        self.state.input_text(text)

    def press_key(self, key: str) -> None:
        keycode(key)  # an unknown key fails here as on every driver
        self._spend("press_key")
        self.state.press_key(key)

    def swipe(self, x1: int, y1: int, x2: int, y2: int, duration_ms: int = 250) -> None:
        self._spend("swipe")
        if self._costs_s:
            self.clock.sleep(max(duration_ms, 10) / 1000.0)  # the finger moves that long
        # The speed decides the fling; the bridges send at least 10 ms.
        self.state.swipe(x1, y1, x2, y2, max(duration_ms, 10))

    def screenshot(self) -> Artifact:
        """A JSON description of the screen (no pixels: the interpreter renders nothing)."""
        self._spend("screenshot")
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
