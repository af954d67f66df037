"""Faults a test can make the virtual phone show, as real phones sometimes do.

    emu.call(lambda device: device.faults.set(dump="ERROR: could not get idle state."))
    ...                                   # every hierarchy dump now answers that text
    emu.call(lambda device: device.faults.clear())

- `dump`: the text the uiautomator2 server's `dumpWindowHierarchy` (and `uiautomator dump`)
  answers instead of the window hierarchy XML, as a phone busy animating or with a broken
  UiAutomation service does (`ERROR: could not get idle state.`).
- `screenshot`: the bytes `takeScreenshot` answers (base64-encoded, as the server does) instead
  of an image: a corrupt capture.
- `screenshot_delay_s`: how long `takeScreenshot` waits before it looks at the screen, as a phone
  busy drawing does; the server answers other calls meanwhile (each call has its own thread on a
  phone's uiautomator2 server).

Characters XML 1.0 forbids need no fault: a widget whose text holds them is written into the
dump raw, as a phone writes them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Faults:
    dump: str | None = None
    screenshot: bytes | None = None
    screenshot_delay_s: float = 0.0

    def set(
        self, *, dump: str | None = None, screenshot: bytes | None = None, screenshot_delay_s: float = 0.0
    ) -> None:
        self.dump = dump
        self.screenshot = screenshot
        self.screenshot_delay_s = screenshot_delay_s

    def clear(self) -> None:
        self.set()
