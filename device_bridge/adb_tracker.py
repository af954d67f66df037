"""Phones that come and go: adb's own device tracking, and what a phone's health looks like now.

`AdbTracker.serve()` (a supervised thread of the bridge) holds one socket to the adb server and
asks it for `host:track-devices`: the server answers `OKAY`, then sends the whole device list
(4 hex digits of length, then `serial<TAB>state` lines) at once and again every time a phone is
plugged, unplugged or changes state (`device`, `offline`, `unauthorized`, ...). A serial that
leaves the list is gone. When the adb server is not running (or restarts) the tracker connects
again every `RECONNECT_S`; meanwhile it knows nothing, and says so (`known` is False).

`phone_health(serial)` asks the phone itself, in one shell round trip, for what the heartbeat
carries: battery level and charging (`dumpsys battery`), whether the screen is on
(`dumpsys power`) and the app in front (`dumpsys activity activities`).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from collections.abc import Callable
from typing import Any

import adbutils

log = logging.getLogger(__name__)

ADB_SERVER_PORT = 5037
RECONNECT_S = 1.0
# How long a read waits before looking at the stop event again.
READ_POLL_S = 0.5
GONE = "gone"  # not in adb's list at all (unplugged, emulator stopped, `adb disconnect`)
PROBE_TIMEOUT_S = 5.0

StateListener = Callable[[str, str], None]


def adb_server_address() -> tuple[str, int]:
    """Where the adb server listens: `ANDROID_ADB_SERVER_PORT` (as adb itself reads it), else 5037."""
    port = os.environ.get("ANDROID_ADB_SERVER_PORT", "")
    return "127.0.0.1", int(port) if port.isdigit() else ADB_SERVER_PORT


def parse_device_list(text: str) -> dict[str, str]:
    """`serial<TAB>state` lines (what `host:devices` and `host:track-devices` send) as a dict."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        serial, _, state = line.partition("\t")
        if serial.strip():
            states[serial.strip()] = state.split()[0] if state.strip() else "unknown"
    return states


class AdbTracker:
    """The adb server's device list, kept current over `host:track-devices` (see the module doc).

    `listen(fn)`: `fn(serial, state)` is called, on the tracker's thread, for every serial whose
    state changed (`GONE` when it left the list). `state(serial)` is the last known state, or None
    while the tracker is not connected to an adb server.
    """

    def __init__(self, stop: threading.Event, address: tuple[str, int] | None = None) -> None:
        self.stop = stop
        self.address = address or adb_server_address()
        self._lock = threading.Lock()
        self._states: dict[str, str] = {}
        self._known = False
        self._listeners: list[StateListener] = []
        self._told_unreachable = False
        # Set once the first device list arrived (tests and start-up wait on it).
        self.ready = threading.Event()

    def listen(self, listener: StateListener) -> None:
        self._listeners.append(listener)

    @property
    def known(self) -> bool:
        return self._known

    def state(self, serial: str) -> str | None:
        """`device`, `offline`, ... or `GONE`; None while the tracker has no list from adb."""
        with self._lock:
            if not self._known:
                return None
            return self._states.get(serial, GONE)

    def serve(self) -> None:
        """Follow the adb server's device list until `stop` is set (reconnecting when adb goes away)."""
        while not self.stop.is_set():
            try:
                self._follow()
            except (OSError, ValueError) as exc:
                if not self._told_unreachable:
                    self._told_unreachable = True
                    log.warning(
                        "cannot follow adb's device list at %s:%d (%s): phones unplugged meanwhile are "
                        "noticed when they stop answering; start the adb server (`adb start-server`)",
                        *self.address,
                        exc,
                    )
            self._forget()
            self.stop.wait(RECONNECT_S)

    def _follow(self) -> None:
        with socket.create_connection(self.address, timeout=5) as sock:
            request = b"host:track-devices"
            sock.sendall(b"%04x" % len(request) + request)
            answer = self._read_exactly(sock, 4)
            if answer != b"OKAY":
                length = int(self._read_exactly(sock, 4), 16) if answer == b"FAIL" else 0
                detail = self._read_exactly(sock, length).decode(errors="replace") if length else ""
                raise ValueError(f"adb answered {answer!r} to host:track-devices {detail}".strip())
            if self._told_unreachable:
                log.info("following adb's device list again")
            self._told_unreachable = False
            while not self.stop.is_set():
                length = int(self._read_exactly(sock, 4), 16)
                self._update(parse_device_list(self._read_exactly(sock, length).decode(errors="replace")))

    def _read_exactly(self, sock: socket.socket, size: int) -> bytes:
        sock.settimeout(READ_POLL_S)
        data = b""
        while len(data) < size:
            try:
                chunk = sock.recv(size - len(data))
            except TimeoutError:
                if self.stop.is_set():
                    raise OSError("the bridge is stopping") from None
                continue
            if not chunk:
                raise OSError("the adb server closed the connection")
            data += chunk
        return data

    def _update(self, states: dict[str, str]) -> None:
        with self._lock:
            before = self._states if self._known else {}
            self._states = states
            self._known = True
        changes = [(serial, state) for serial, state in states.items() if before.get(serial) != state]
        changes += [(serial, GONE) for serial in before if serial not in states]
        self.ready.set()
        for serial, state in changes:
            log.info("adb: %s is now %s", serial, state)
            self._tell(serial, state)

    def _forget(self) -> None:
        """The adb server went away: its list is not known until the tracker connects again."""
        with self._lock:
            self._known = False

    def _tell(self, serial: str, state: str) -> None:
        for listener in self._listeners:
            try:
                listener(serial, state)
            except Exception:  # a listener's bug must not stop the tracking of every phone
                log.exception("a listener of adb's device list failed on %s -> %s", serial, state)


# --- a phone's health ----------------------------------------------------------------------------

# One round trip; `grep` keeps a real phone's long dumps off the wire.
_PROBE = (
    "dumpsys battery; echo __power__; dumpsys power | grep -E 'mWakefulness=|Display Power: state='; "
    "echo __activity__; dumpsys activity activities | grep -E 'ResumedActivity'"
)
_RESUMED = re.compile(r"ResumedActivity[:=]\s*ActivityRecord\{\S+\s+u\d+\s+([A-Za-z0-9_.]+)/")
_FIELD = re.compile(r"^\s*([A-Za-z ]+):\s*(\S+)\s*$")


def parse_health(output: str) -> dict[str, Any]:
    """`battery`/`charging`/`screenOn`/`foregroundApp` out of the probe's output (None: not said)."""
    battery_part, _, rest = output.partition("__power__")
    power_part, _, activity_part = rest.partition("__activity__")
    fields: dict[str, str] = {}
    for line in battery_part.splitlines():
        match = _FIELD.match(line)
        if match:
            fields[match.group(1).strip().lower()] = match.group(2)
    battery: int | None = None
    if fields.get("level", "").isdigit():
        scale = int(fields["scale"]) if fields.get("scale", "").isdigit() and int(fields["scale"]) else 100
        battery = round(int(fields["level"]) * 100 / scale)
    sources = [fields.get(f"{name} powered") for name in ("ac", "usb", "wireless", "dock")]
    charging: bool | None = None
    if any(source is not None for source in sources):
        charging = any(source == "true" for source in sources)
    screen_on: bool | None = None
    if "Display Power: state=" in power_part:
        screen_on = "Display Power: state=ON" in power_part
    elif "mWakefulness=" in power_part:
        screen_on = "mWakefulness=Awake" in power_part
    match = _RESUMED.search(activity_part)
    return {
        "battery": battery,
        "charging": charging,
        "screenOn": screen_on,
        "foregroundApp": match.group(1) if match else None,
    }


def phone_health(serial: str, address: tuple[str, int] | None = None) -> dict[str, Any]:
    """What the phone says of itself now (`parse_health`); `{"probeError": ...}` when it does not answer."""
    host, port = address or adb_server_address()
    try:
        client = adbutils.AdbClient(host=host, port=port, socket_timeout=PROBE_TIMEOUT_S)
        output = client.device(serial).shell(_PROBE, timeout=PROBE_TIMEOUT_S)
    except (adbutils.AdbError, OSError) as exc:
        return {"probeError": f"{type(exc).__name__}: {exc}"}
    return parse_health(str(output))
