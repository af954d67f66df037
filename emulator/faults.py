"""Faults a test can make the virtual phone show, as real phones sometimes do.

    emu.call(lambda device: device.faults.set(dump="ERROR: could not get idle state."))
    ...                                   # every hierarchy dump now answers that text
    emu.call(lambda device: device.faults.clear())

- `dump`: the text the uiautomator2 server's `dumpWindowHierarchy` (and `uiautomator dump`)
  answers instead of the window hierarchy XML, as a phone busy animating or with a broken
  UiAutomation service does (`ERROR: could not get idle state.`).
- `screenshot`: the bytes `takeScreenshot` answers (base64-encoded, as the server does) instead
  of an image: a corrupt capture.
- `screenshot_delay_s`: how long `takeScreenshot` (and the Appium server's screenshot) waits before
  it looks at the screen, as a phone busy drawing does; the server answers other calls meanwhile
  (each call has its own thread on a phone's uiautomator2 server).
- `missing_commands`: shell commands this phone lacks (`{"screenrecord"}`, as on a phone whose
  vendor left the tool out): the shell answers `inaccessible or not found` (127) and `which`
  does not list them.
- `screenrecord_error`: what `screenrecord` prints to stderr before it exits 1 at once, as a
  phone whose video encoder cannot be had does (`ERROR: unable to create video/avc codec`).

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
    missing_commands: frozenset[str] = frozenset()
    screenrecord_error: str | None = None

    def set(
        self,
        *,
        dump: str | None = None,
        screenshot: bytes | None = None,
        screenshot_delay_s: float = 0.0,
        missing_commands: frozenset[str] = frozenset(),
        screenrecord_error: str | None = None,
    ) -> None:
        self.dump = dump
        self.screenshot = screenshot
        self.screenshot_delay_s = screenshot_delay_s
        self.missing_commands = frozenset(missing_commands)
        self.screenrecord_error = screenrecord_error

    def clear(self) -> None:
        self.set()
