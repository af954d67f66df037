"""`U2Device`: the interpreter's `Device` protocol over the real uiautomator2 library.

Mechanics only, as `interpreter.device` asks: the engine finds elements with the shared
matcher over `hierarchy()` and taps their centre, and it does all the waiting with its
own timeouts, so no uiautomator2 selector, wait or implicit retry is used here.

Round trips are what a step costs on a phone, so the driver spends as few as it can:
the installed package list is read once (`pm list packages`) and cached, the screen size
once, and text goes in by the clipboard RPCs without uiautomator2's IME probe (`ime list`,
a shell round trip on every `send_keys`). JSON-RPC calls go over a kept-alive HTTP connection
per thread (`rpc_pipe.RpcPipe`: one adb stream to the server's port, as `adb forward` would
give, read lean), where the uiautomator2 client opens a new adb connection for every call; when
that connection fails the call goes through the client, which restarts the server as it always does.

`hold_changes_until(wait)` makes the next call that changes the screen (tap, typing, key,
swipe, app launch or stop) call `wait(connection)` first: a step's frame being taken on another
thread (`device_bridge.frames`) shows the screen as that step left it, while reads go on meanwhile.
`after_next_look(go)` calls `go()` once the next look at the screen (a hierarchy dump, the app in
front) has its answer, or before the next change, and `looks()` counts the changes and the looks
so far. `ask_screen_jpeg` sends a step's screenshot request on the thread's kept connection without
waiting for its answer: taps, typing and keys sent behind it on that connection are done after the
picture is taken, so they need not wait for it; a look meanwhile goes on a second connection, so
it does not wait behind the picture either.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import adbutils
import requests
import uiautomator2 as u2
from PIL import Image

from device_bridge.device_lock import SerialLock
from device_bridge.errors import DeviceUnavailableError
from device_bridge.rpc_pipe import RpcPipe, Ticket
from device_bridge.screen_hooks import ScreenHooks
from interpreter.device import Artifact
from interpreter.errors import AppNotInstalledError, AppNotLaunchableError
from interpreter.hierarchy import UiNode, from_android_xml
from interpreter.keys import keycode

log = logging.getLogger(__name__)

T = TypeVar("T")

# The window in focus, as `dumpsys window displays` says it: `mCurrentFocus=Window{1a2b3c u0 PKG/ACT}`
# (a window that is no app's activity, `Window{... u0 StatusBar}` or `null`, does not match).
_FOCUSED_WINDOW = re.compile(r"mCurrentFocus=Window\{\S+ u\d+ (?P<package>[^\s/}]+)/(?P<activity>[^\s}]+)\}")
# The depth uiautomator2's own dump_hierarchy() asks for.
_DUMP_MAX_DEPTH = 50
# The port the uiautomator2 server listens on, on the phone, and the client's per-call timeout.
_SERVER_PORT = 9008
_RPC_TIMEOUT_S = 10.0
# What the uiautomator2 client sends (no gzip: NanoHTTPD's leaks).
_RPC_HEADERS = {"User-Agent": "uiautomator2", "Accept-Encoding": "", "Content-Type": "application/json"}
# The calls that only look at the screen: one does not queue behind a picture asked for on the
# step connection (`ask_screen_jpeg`), it goes on a connection of its own meanwhile.
_LOOKS = frozenset({"dumpWindowHierarchy", "deviceInfo", "takeScreenshot"})
# How old a dump may be and still answer the next look at a screen nobody changed since (seconds).
_LOOK_AGAIN_S = 0.05


@dataclass(slots=True)
class _Look:
    """The last window hierarchy dump: its text, its tree, the count of screen changes before it was
    asked for, when it came (monotonic seconds), and whether it already answered a later look."""

    xml: str
    tree: UiNode
    changes: int
    at: float
    lent: bool = False


class ScreenAsk:
    """A scaled screenshot asked for on a kept connection (`U2Device.ask_screen_jpeg`)."""

    def __init__(self, pipe: RpcPipe, ticket: Ticket) -> None:
        self.connection = pipe  # a change sent on it is done after the picture is taken
        self._ticket = ticket

    def result(self) -> bytes | None:
        """The picture's JPEG bytes (None when the phone sent none); OSError, ValueError or
        a uiautomator2 error when it could not be had."""
        status, body = self.connection.answer(self._ticket)
        if status != 200:
            raise ConnectionError(f"HTTP {status}")
        data = _rpc_result(body, [])
        return base64.b64decode(data) if data else None


class U2Device(ScreenHooks):
    """One phone (or the emulator) driven through uiautomator2, by adb serial.

    Construction takes the serial's bridge lock (a second `U2Device` on the same serial,
    in any process, raises `DeviceBusyError`) and connects; `close()` lets go of both.
    """

    def __init__(self, serial: str, *, lock_dir: Path) -> None:
        self._serial = serial
        self._lock = SerialLock.acquire(lock_dir, serial)
        try:
            self._u2 = self._guard(f"connect to {serial}", lambda: u2.connect(serial))
        except BaseException:
            self._lock.release()
            raise
        self._installed: frozenset[str] | None = None
        self._size: tuple[int, int] | None = None
        self._last_screen: _Look | None = None
        self._local = threading.local()
        self._connections: list[RpcPipe] = []
        self._connections_lock = threading.Lock()

    # --- plumbing ----------------------------------------------------------------------

    def _guard(self, what: str, call: Callable[[], T]) -> T:
        """Run one uiautomator2/adb call; turn its failures into `DeviceUnavailableError`."""
        try:
            return call()
        except (u2.exceptions.BaseException, adbutils.AdbError, requests.RequestException, OSError) as exc:
            raise DeviceUnavailableError(
                f"{what} failed on device {self._serial}: {type(exc).__name__}: {exc} "
                "(check that `adb devices` lists it as `device` and that it is unlocked)"
            ) from exc

    def _rpc(self, method: str, *params: Any) -> Any:
        args: Any = list(params) if params else {}
        try:
            status, body = self._post(
                json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": args}).encode(),
                method in _LOOKS,
            )
            if status != 200:
                raise ConnectionError(f"HTTP {status}")
        except (OSError, ValueError, adbutils.AdbError) as exc:
            self._drop_connection()
            # The library's own call: it restarts the server when it is gone, and says what failed.
            log.debug(
                "kept connection to %s failed on %s (%s): through the client", self._serial, method, exc
            )
            return self._guard(method, lambda: self._u2.jsonrpc_call(method, args))
        return self._guard(method, lambda: _rpc_result(body, args))

    def _post(self, payload: bytes, look: bool = False) -> tuple[int, bytes]:
        pipe = self._pipe()
        if look and pipe.waiting:  # a picture asked for ahead: a look does not wait for it
            pipe = self._pipe("side")
        return pipe.post(payload)

    def _pipe(self, which: str = "conn") -> RpcPipe:
        """This thread's kept connection to the server (`side`: the one for looks while it is busy)."""
        pipe: RpcPipe | None = getattr(self._local, which, None)
        if pipe is None:
            port = int(getattr(self._u2, "_device_server_port", _SERVER_PORT))
            device = self._u2.adb_device

            def connect() -> socket.socket:
                sock: socket.socket = device.create_connection(adbutils.Network.TCP, port)
                sock.settimeout(_RPC_TIMEOUT_S)
                return sock

            pipe = RpcPipe(connect, f"127.0.0.1:{port}", "/jsonrpc/0", _RPC_HEADERS)
            setattr(self._local, which, pipe)
            with self._connections_lock:
                self._connections.append(pipe)
        return pipe

    def _drop_connection(self) -> None:
        for which in ("conn", "side"):
            pipe: RpcPipe | None = getattr(self._local, which, None)
            if pipe is not None:
                pipe.close()
                setattr(self._local, which, None)
                with self._connections_lock:
                    if pipe in self._connections:
                        self._connections.remove(pipe)

    def close(self) -> None:
        """Let go of the device: end the uiautomator2 server this bridge started, then the lock.

        The server's shell stream is what keeps it (and the phone's one UiAutomation client)
        alive; closing it frees the phone for the next bridge or tool, and closes the socket.
        """
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        try:
            self._u2.stop_uiautomator(wait=False)
        except Exception as exc:  # the phone may be gone already: closing must still free the lock
            log.debug("stopping the uiautomator2 server on %s: %s", self._serial, exc)
        finally:
            self._lock.release()

    def __enter__(self) -> U2Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def u2(self) -> u2.Device:
        """The underlying uiautomator2 device (for benchmarks and diagnostics)."""
        return self._u2

    # --- Device protocol -----------------------------------------------------------------

    @property
    def serial(self) -> str:
        return self._serial

    def screen_size(self) -> tuple[int, int]:
        if self._size is None:
            info = self._rpc("deviceInfo")
            self._size = (int(info["displayWidth"]), int(info["displayHeight"]))
        return self._size

    def installed_packages(self, refresh: bool = False) -> frozenset[str]:
        """The packages on the device (`pm list packages`), read once and cached."""
        if self._installed is None or refresh:
            self._installed = frozenset(self._guard("pm list packages", self._u2.app_list))
        return self._installed

    def launch_app(self, package: str, stop_first: bool = False) -> None:
        if package not in self.installed_packages():
            # It may have been installed since the list was read: look once more before failing.
            if package not in self.installed_packages(refresh=True):
                raise AppNotInstalledError(package)
        self._settle()
        if stop_first:
            self.stop_app(package)
        # `monkey` starts the launcher activity without our knowing its name; it says when there is none
        # (the home screen's own package, a system package), and then nothing was started.
        monkey = ["monkey", "-p", package, "-c", "android.intent.category.LAUNCHER", "1"]
        started = self._guard(f"start {package}", lambda: self._u2.shell(monkey))
        if "No activities found" in started.output or "monkey aborted" in started.output:
            raise AppNotLaunchableError(package)

    def stop_app(self, package: str) -> None:
        self._settle()
        self._guard(f"stop {package}", lambda: self._u2.app_stop(package))

    def foreground_package(self) -> str | None:
        return self._foreground("package")

    def foreground_activity(self) -> str | None:
        """The activity in front (for the screen inspector's recording), or None when unknown."""
        return self._foreground("activity")

    def _foreground(self, part: str) -> str | None:
        """The package or activity of the window in focus, or None when unknown.

        Asked before every UI step while a denylist is set. The window manager's focus
        (`mCurrentFocus=Window{hash u0 PKG/ACT}`) is in `dumpsys window displays` on every Android
        since 10, one shell; uiautomator2's `app_current()` reads `dumpsys window windows` first,
        which lost that line in Android 13, and then two `dumpsys activity` shells: three a step.
        Its way is kept for what this one cannot tell (an older Android, no app window in focus).
        """
        try:
            focus = _FOCUSED_WINDOW.search(self._u2.shell(["dumpsys", "window", "displays"]).output)
            if focus is not None:
                return focus.group(part)
            current = self._u2.app_current()
        except (u2.exceptions.BaseException, adbutils.AdbError, requests.RequestException, OSError) as exc:
            log.debug("foreground %s of %s unknown: %s", part, self._serial, exc)
            return None
        finally:
            self._looked()
        value = current.get(part)
        return str(value) if value else None

    def ping(self) -> None:
        """One cheap round trip to the phone; `DeviceUnavailableError` when it does not answer."""
        self._rpc("deviceInfo")

    def hierarchy(self) -> UiNode:
        # The first look after another one, with no change made to the screen in between and soon
        # after (the first look of a step after a step that only looked), is answered with that
        # look's tree instead of a dump of its own; only one look is, so the polls of a wait go on
        # dumping the screen.
        last = self._last_screen
        if (
            last is not None
            and not last.lent
            and last.changes == self._changes
            and time.monotonic() - last.at <= _LOOK_AGAIN_S
        ):
            last.lent = True
            self._looked()
            return last.tree
        # The dump RPC itself rather than dump_hierarchy(), which sleeps and retries three
        # times on an empty screen: the engine does its own polling with its own timeouts.
        changes = self._changes
        try:
            xml = self._rpc("dumpWindowHierarchy", False, _DUMP_MAX_DEPTH)
        finally:
            self._looked()
        if not xml:
            raise DeviceUnavailableError(f"device {self._serial} returned no window hierarchy")
        # The same screen as last time (a wait's polls, a step that did not change it) is not read
        # again: the tree is only ever read, never changed.
        tree = last.tree if last is not None and last.xml == xml else from_android_xml(str(xml))
        self._last_screen = _Look(xml, tree, changes, time.monotonic())
        return tree

    def hierarchy_xml(self) -> str:
        """The raw window hierarchy dump (kept as failure context)."""
        try:
            return str(self._rpc("dumpWindowHierarchy", False, _DUMP_MAX_DEPTH) or "")
        finally:
            self._looked()

    def tap(self, x: int, y: int) -> None:
        self._settle(self._pipe())
        self._rpc("click", x, y)  # what the client's click(x, y) sends for pixel coordinates

    def input_text(self, text: str, clear: bool = False) -> None:
        self._settle(self._pipe())
        if clear:
            self._rpc("clearInputText")
        if not text:
            return
        # What u2's send_keys does on its clipboard path, minus its IME probe.
        self._rpc("setClipboard", None, text)
        if self._rpc("getClipboard") != text:
            raise DeviceUnavailableError(
                f"device {self._serial} did not take the text into its clipboard, so it cannot be typed"
            )
        self._rpc("pasteClipboard")

    def press_key(self, key: str) -> None:
        # By code, for every key: uiautomator's pressKey names cover only some of them.
        self._settle(self._pipe())
        self._rpc("pressKeyCode", keycode(key))

    def swipe(self, x1: int, y1: int, x2: int, y2: int, duration_ms: int = 250) -> None:
        self._settle()
        self._guard("swipe", lambda: self._u2.swipe(x1, y1, x2, y2, duration=max(duration_ms, 10) / 1000))

    def ask_screen_jpeg(self, scale: float, quality: int) -> ScreenAsk | None:
        """Ask for the screen as `screen_jpeg` does, on this thread's kept connection, without waiting
        for it: the changes this thread sends next are done after the picture is taken (the phone
        answers one connection's requests in order). None when it could not be asked."""
        payload = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "takeScreenshot", "params": [scale, quality]}
        )
        pipe = self._pipe()
        try:
            return ScreenAsk(pipe, pipe.send(payload.encode()))
        except (OSError, adbutils.AdbError) as exc:
            log.debug("screenshot not asked for ahead on %s: %s", self._serial, exc)
            return None

    def screen_jpeg(self, scale: float, quality: int) -> bytes | None:
        """The screen as JPEG scaled on the phone (a step's frame); None when the phone sends none."""
        data = self._rpc("takeScreenshot", scale, quality)
        return base64.b64decode(data) if data else None

    def screenshot(self) -> Artifact:
        data = self._rpc("takeScreenshot", 1, 80)
        if data:
            image = Image.open(io.BytesIO(base64.b64decode(data)))
        else:  # the RPC may answer null; uiautomator2 then falls back to screencap
            image = self._guard("screencap", lambda: self._u2.screenshot(format="pillow"))
        out = io.BytesIO()
        image.save(out, format="PNG")
        return Artifact(name="screenshot.png", content_type="image/png", data=out.getvalue())


def _rpc_result(body: bytes, params: Any) -> Any:
    """The result of a JSON-RPC answer, or the uiautomator2 client's exception for it."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise u2.exceptions.RPCInvalidError("Unknown RPC error: not a dict")
    if "error" in data:
        error = data["error"]
        raise u2.exceptions.RPCUnknownError(
            f"Unknown RPC error: {error.get('code')} {error.get('message', '')}", params, error.get("data")
        )
    if "result" not in data:
        raise u2.exceptions.RPCInvalidError("Unknown RPC error: no result field")
    return data["result"]
