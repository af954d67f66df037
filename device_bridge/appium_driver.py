"""`AppiumDevice`: the interpreter's `Device` protocol over an Appium server (W3C WebDriver).

Any Appium server with the UiAutomator2 driver works: a local one (`appium`, which drives the
phone through its own adb) or a device cloud's. The session asks for `automationName:
UiAutomator2` and `udid` = the serial; `capabilities` add to or override that (a cloud's own
keys, `appium:app`, credentials in its options).

Mechanics only, exactly as `U2Device`: the engine finds elements with the shared matcher over
`hierarchy()` (the page source) and taps their centre, and does all the waiting; no Appium
locator, implicit wait or retry is used here. A tap and a swipe are W3C touch actions; text
goes to the focused field (`element/active` + `value`), and with nothing focused nothing is
typed, as on the other drivers.

Frames off the step's path, as on `U2Device`: `hold_changes_until(wait)` makes the next call that
changes the screen call `wait()` first, `after_next_look(go)` calls `go()` once the next look at
the screen (the page source, the app in front) has its answer or before the next change, and
`looks()` counts both; the frame thread (`device_bridge.frames`) takes its screenshots through the
same session (the server answers one command at a time, in order).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from appium import webdriver
from appium.options.common.base import AppiumOptions
from appium.webdriver.client_config import AppiumClientConfig
from selenium.common.exceptions import NoSuchElementException, SessionNotCreatedException, WebDriverException
from selenium.webdriver.remote.command import Command
from selenium.webdriver.remote.webelement import WebElement

from device_bridge.device_lock import SerialLock
from device_bridge.errors import AppiumSessionError, DeviceUnavailableError
from device_bridge.screen_hooks import ScreenHooks
from interpreter.device import Artifact
from interpreter.errors import AppNotInstalledError, AppNotLaunchableError
from interpreter.hierarchy import UiNode, from_android_xml
from interpreter.keys import keycode

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_APPIUM_URL = "http://127.0.0.1:4723"
# What a command may take before the bridge gives up on the server (session creation included:
# a first session installs the driver's APKs on the phone).
_COMMAND_TIMEOUT_S = 180
# Connections to the server kept open: one for the step's commands, one for the frames' screenshots.
_KEPT_CONNECTIONS = 2


def session_capabilities(serial: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The capabilities of a session on `serial`, with `overrides` (a cloud's keys) on top."""
    capabilities: dict[str, Any] = {
        "platformName": "Android",
        "appium:automationName": "UiAutomator2",
        "appium:udid": serial,
        # Leave the phone's apps and data as they are; the workflow says what to launch.
        "appium:noReset": True,
        # The bridge may sit between runs for long: never let the server end the session.
        "appium:newCommandTimeout": 0,
    }
    capabilities.update(overrides or {})
    return capabilities


def _unreachable(url: str, exc: BaseException) -> AppiumSessionError:
    return AppiumSessionError(
        f"cannot reach the Appium server at {url} ({exc}): start one (`appium --port 4723`, with the "
        "UiAutomator2 driver: `appium driver install uiautomator2`) or point --appium-url "
        "(PHONEFLOW_BRIDGE_APPIUM_URL) at a running server"
    )


def _refused(url: str, serial: str, exc: WebDriverException) -> AppiumSessionError:
    text = (
        (exc.msg or str(exc)).strip().splitlines()[0] if (exc.msg or str(exc)).strip() else type(exc).__name__
    )
    lowered = text.lower()
    if "could not find a driver" in lowered or "automationname" in lowered:
        hint = "install the UiAutomator2 driver on that server: `appium driver install uiautomator2`"
    elif serial in text or "not in the list of connected devices" in lowered or "device" in lowered:
        hint = (
            f"check that the machine running Appium sees {serial} in `adb devices` "
            "(and that ANDROID_HOME points at its Android SDK or adb)"
        )
    else:
        hint = "read the Appium server's log for the cause"
    return AppiumSessionError(f"the Appium server at {url} refused a session on {serial}: {text}; {hint}")


def open_session(url: str, serial: str, capabilities: Mapping[str, Any] | None = None) -> webdriver.Remote:
    """A new Appium session on `serial`. Raises `AppiumSessionError` saying what to do."""
    options = AppiumOptions()
    options.load_capabilities(session_capabilities(serial, capabilities))
    config = AppiumClientConfig(
        remote_server_addr=url,
        timeout=_COMMAND_TIMEOUT_S,
        # Selenium reads the pool manager's arguments from this nested key. Two kept connections: the
        # step's thread and the frame thread (device_bridge.frames) send commands at once; with
        # urllib3's default of one, every overlapping command opened a connection of its own and
        # logged "Connection pool is full, discarding connection" when it was done.
        init_args_for_pool_manager={"init_args_for_pool_manager": {"maxsize": _KEPT_CONNECTIONS}},
    )
    try:
        return webdriver.Remote(url, options=options, client_config=config)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _unreachable(url, exc) from exc
    except SessionNotCreatedException as exc:
        raise _refused(url, serial, exc) from exc
    except WebDriverException as exc:
        if "Connection refused" in str(exc) or "Max retries" in str(exc):
            raise _unreachable(url, exc) from exc
        raise _refused(url, serial, exc) from exc


class AppiumDevice(ScreenHooks):
    """One phone driven through an Appium server, by serial.

    Construction takes the serial's bridge lock (as `U2Device` does: one bridge per phone) and
    opens the session; `close()` ends both.
    """

    def __init__(
        self,
        serial: str,
        *,
        lock_dir: Path,
        server_url: str = DEFAULT_APPIUM_URL,
        capabilities: Mapping[str, Any] | None = None,
    ) -> None:
        self._serial = serial
        self._url = server_url
        self._lock = SerialLock.acquire(lock_dir, serial)
        try:
            self._driver = open_session(server_url, serial, capabilities)
        except BaseException:
            self._lock.release()
            raise
        self._size: tuple[int, int] | None = None

    # --- plumbing ----------------------------------------------------------------------

    def _guard(self, what: str, call: Callable[[], T]) -> T:
        """Run one WebDriver call; turn its failures into `DeviceUnavailableError`."""
        try:
            return call()
        except (WebDriverException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unavailable(what, exc) from exc

    def _unavailable(self, what: str, exc: BaseException) -> DeviceUnavailableError:
        detail = (getattr(exc, "msg", None) or str(exc)).strip().splitlines()
        return DeviceUnavailableError(
            f"{what} failed on device {self._serial} through the Appium server at {self._url}: "
            f"{type(exc).__name__}: {detail[0] if detail else ''} (check that the server is up and that "
            "the phone is connected and unlocked)"
        )

    def close(self) -> None:
        """End the Appium session (the server stops its helper on the phone), then free the lock."""
        try:
            self._driver.quit()
        except Exception as exc:  # the server may be gone already: closing must still free the lock
            log.debug("ending the Appium session on %s: %s", self._serial, exc)
        finally:
            self._lock.release()

    def __enter__(self) -> AppiumDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def driver(self) -> webdriver.Remote:
        """The underlying Appium session (for benchmarks and diagnostics)."""
        return self._driver

    # --- Device protocol -----------------------------------------------------------------

    @property
    def serial(self) -> str:
        return self._serial

    def screen_size(self) -> tuple[int, int]:
        if self._size is None:
            size = self._guard("window size", self._driver.get_window_size)
            self._size = (int(size["width"]), int(size["height"]))
        return self._size

    def launch_app(self, package: str, stop_first: bool = False) -> None:
        if not self._guard(f"look up {package}", lambda: self._driver.is_app_installed(package)):
            raise AppNotInstalledError(package)
        self._settle()
        if stop_first:
            self.stop_app(package)
        try:
            self._driver.activate_app(package)
        except WebDriverException as exc:
            # The server resolves the launcher activity first (`cmd package resolve-activity`); the home
            # screen's own package and system packages have none, and then nothing was started.
            if "resolve the launchable activity" in (exc.msg or str(exc)):
                raise AppNotLaunchableError(package) from exc
            raise self._unavailable(f"start {package}", exc) from exc

    def stop_app(self, package: str) -> None:
        """`am force-stop`, as `U2Device.stop_app`: without the server's wait for the process to be gone.

        The force-stop is done when the command returns; the server's check afterwards (500 ms by
        default) only fails, after waiting, on a persistent system process that the system keeps
        running (`com.android.systemui`), which the other drivers stop without an error.
        """
        self._settle()
        self._guard(f"stop {package}", lambda: self._driver.terminate_app(package, timeout=0))

    def foreground_package(self) -> str | None:
        try:
            package = self._driver.current_package
        except (WebDriverException, urllib3.exceptions.HTTPError, OSError) as exc:
            log.debug("foreground package of %s unknown: %s", self._serial, exc)
            return None
        finally:
            self._looked()
        return str(package) if package else None

    def foreground_activity(self) -> str | None:
        try:
            activity = self._driver.current_activity
        except (WebDriverException, urllib3.exceptions.HTTPError, OSError) as exc:
            log.debug("foreground activity of %s unknown: %s", self._serial, exc)
            return None
        finally:
            self._looked()
        return str(activity) if activity else None

    def ping(self) -> None:
        self._guard("window size", self._driver.get_window_size)

    def hierarchy_xml(self) -> str:
        """The page source (kept as failure context)."""
        try:
            return str(self._guard("page source", lambda: self._driver.page_source) or "")
        finally:
            self._looked()

    def hierarchy(self) -> UiNode:
        xml = self.hierarchy_xml()
        if not xml:
            raise DeviceUnavailableError(f"device {self._serial} returned no page source")
        root = from_android_xml(xml)
        marked = self._restore_replaced_characters(root)
        if marked:
            self._looked()  # it looked again (a frame asked for in between is not this step's)
        return root

    def _restore_replaced_characters(self, root: UiNode) -> bool:
        """Give back the characters the server's page source replaced with `?`.

        Appium's UiAutomator2 server writes each character XML 1.0 forbids (control characters
        real apps do show) as `?`, while an element's own `text` and `content-desc` attributes
        are what the phone shows. The elements whose text holds a `?` are fetched again, in
        document order, so the matcher sees the same text as on the other drivers. When the
        screen changed in between (another count of elements), the page source is kept as is.
        """
        marked = [node for node in root.walk() if "?" in node.text or "?" in node.content_desc]
        if not marked:
            return False
        xpath = "//*[contains(@text,'?') or contains(@content-desc,'?')]"
        elements = self._guard("find elements by xpath", lambda: self._driver.find_elements("xpath", xpath))
        if len(elements) != len(marked):
            log.debug("screen of %s changed while reading replaced characters; kept as given", self._serial)
            return True
        for node, element in zip(marked, elements, strict=True):
            if "?" in node.text:
                node.text = self._attribute(element, "text")
            if "?" in node.content_desc:
                node.content_desc = self._attribute(element, "content-desc")
        return True

    def _attribute(self, element: WebElement, name: str) -> str:
        value = self._guard(f"read {name}", lambda: element.get_attribute(name))
        return str(value or "")

    def _touch(self, points: list[tuple[int, int]], duration_ms: int) -> None:
        """One finger down at the first point, through the others, up at the last (W3C actions)."""
        (x, y), *rest = points
        steps: list[dict[str, Any]] = [
            {"type": "pointerMove", "duration": 0, "x": x, "y": y, "origin": "viewport"},
            {"type": "pointerDown", "button": 0},
        ]
        steps += [
            {"type": "pointerMove", "duration": duration_ms, "x": x, "y": y, "origin": "viewport"}
            for x, y in rest
        ]
        steps.append({"type": "pointerUp", "button": 0})
        finger = {"type": "pointer", "id": "finger", "parameters": {"pointerType": "touch"}, "actions": steps}
        self._driver.execute(Command.W3C_ACTIONS, {"actions": [finger]})

    def tap(self, x: int, y: int) -> None:
        self._settle()
        self._guard("tap", lambda: self._touch([(x, y)], 0))

    def _focused_field(self) -> WebElement | None:
        try:
            return self._driver.switch_to.active_element
        except NoSuchElementException:
            return None

    def input_text(self, text: str, clear: bool = False) -> None:
        self._settle()
        field = self._guard("find the focused field", self._focused_field)
        if field is None:
            return  # nothing has focus: nothing is typed, as on the other drivers
        if clear:
            self._guard("clear the focused field", field.clear)
        if text:
            self._guard("type text", lambda: field.send_keys(text))

    def press_key(self, key: str) -> None:
        code = keycode(key)
        self._settle()
        self._guard(f"press {key}", lambda: self._driver.press_keycode(code))

    def swipe(self, x1: int, y1: int, x2: int, y2: int, duration_ms: int = 250) -> None:
        self._settle()
        self._guard("swipe", lambda: self._touch([(x1, y1), (x2, y2)], max(duration_ms, 10)))

    def screenshot(self) -> Artifact:
        data = self._guard("screenshot", self._driver.get_screenshot_as_png)
        return Artifact(name="screenshot.png", content_type="image/png", data=data)
