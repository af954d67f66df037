"""The `Device` protocol: what the engine needs from a phone.

Two drivers implement it: `interpreter.simulator.SimulatedDevice` over the app
model, and `device_bridge.driver.U2Device` over uiautomator2. Drivers do mechanics
only; they never find elements (the engine does, with `interpreter.matcher` over
`hierarchy()`) and never write messages for the trace (the engine does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from interpreter.hierarchy import UiNode


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file a run produced (a screenshot, a hierarchy dump), kept outside the trace."""

    name: str
    content_type: str
    data: bytes


class Device(Protocol):
    @property
    def serial(self) -> str: ...

    def screen_size(self) -> tuple[int, int]:
        """Width and height in pixels."""
        ...

    def launch_app(self, package: str, stop_first: bool = False) -> None:
        """Bring the app to the foreground. Raises `AppNotInstalledError`."""
        ...

    def stop_app(self, package: str) -> None:
        """Force-stop the app (no error when it is not running)."""
        ...

    def foreground_package(self) -> str | None:
        """The package of the app on screen, or None when that cannot be told."""
        ...

    def foreground_activity(self) -> str | None:
        """The activity on top (short `.Name` or qualified), or None when that cannot be told."""
        ...

    def hierarchy(self) -> UiNode:
        """The current window hierarchy (visible widgets, with their bounds)."""
        ...

    def tap(self, x: int, y: int) -> None: ...

    def input_text(self, text: str, clear: bool = False) -> None:
        """Type into the focused editable field, first clearing it when `clear`."""
        ...

    def press_key(self, key: str) -> None:
        """A key of `interpreter.keys` (`back`, `home`, ...); `ValueError` for any other name."""
        ...

    def swipe(self, x1: int, y1: int, x2: int, y2: int, duration_ms: int = 250) -> None: ...

    def screenshot(self) -> Artifact:
        """The screen as an image artifact."""
        ...
