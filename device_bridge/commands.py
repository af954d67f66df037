"""What a person asks of a served phone now (the builder's screen inspector), by the server's
command channel: one thread per device long-polls `GET /api/v1/devices/me/commands?wait=N`, does
each command on the phone and posts the answer.

- `inspect`: a screenshot (JPEG, at most `SCREENSHOT_WIDTH` px wide: the hierarchy keeps the
  phone's own pixels) and the window hierarchy, with the app and activity in front;
- `click {x, y}`: the hierarchy before, the tap, then the screen once it has settled (it changed
  and two dumps in a row agree, or `settle_s` passed), as `inspect` answers it.

A click is refused while the device runs a run (a tap would land in someone's run); an inspect
only reads and may happen any time. A phone error is an answer too (`ok: false` with its words).
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

from device_bridge.devices import BridgeDevice
from device_bridge.errors import ServerError, ServerRefusedError
from device_bridge.server_api import DeviceApi
from device_bridge.uploader import Backoff
from interpreter.errors import DeviceError

log = logging.getLogger(__name__)

SCREENSHOT_WIDTH = 540
# How often a settling screen is dumped after a click.
SETTLE_POLL_S = 0.15


class CommandRefused(Exception):
    """A command the bridge will not do now; its message goes back to the person."""


def screenshot_jpeg(device: BridgeDevice) -> dict[str, str]:
    """The screen as a small JPEG: `{contentType, data (base64)}`."""
    shot = device.screenshot()
    image = Image.open(io.BytesIO(shot.data)).convert("RGB")
    if image.width > SCREENSHOT_WIDTH:
        image = image.resize((SCREENSHOT_WIDTH, round(image.height * SCREENSHOT_WIDTH / image.width)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=75)
    return {"contentType": "image/jpeg", "data": base64.b64encode(out.getvalue()).decode("ascii")}


def foreground(device: BridgeDevice) -> dict[str, str | None]:
    """The app in front and, when the driver knows it, its activity."""
    activity: Callable[[], str | None] | None = getattr(device, "foreground_activity", None)
    return {"package": device.foreground_package(), "activity": activity() if activity else None}


def inspect(device: BridgeDevice) -> dict[str, Any]:
    return {
        "screenshot": screenshot_jpeg(device),
        "hierarchy": device.hierarchy_xml(),
        "foreground": foreground(device),
    }


def click(device: BridgeDevice, x: int, y: int, settle_s: float) -> dict[str, Any]:
    before = {"hierarchy": device.hierarchy_xml(), "foreground": foreground(device)}
    device.tap(x, y)
    deadline = time.monotonic() + settle_s
    previous = before["hierarchy"]
    while time.monotonic() < deadline:
        time.sleep(SETTLE_POLL_S)
        now = device.hierarchy_xml()
        if now != before["hierarchy"] and now == previous:
            break
        previous = now
    return {**inspect(device), "clicked": {"x": x, "y": y}, "before": before}


class CommandWorker:
    """Serves one device's commands until `stop` is set."""

    def __init__(
        self,
        api: DeviceApi,
        device: BridgeDevice,
        stop: threading.Event,
        *,
        run_lock: threading.Lock,
        wait_s: float,
        settle_s: float,
        backoff: Backoff,
        serial: str,
    ) -> None:
        self.api = api
        self.device = device
        self.stop = stop
        # Held by the device's worker while it runs a run: a click waits for no one, it is refused.
        self.run_lock = run_lock
        self.wait_s = wait_s
        self.settle_s = settle_s
        self.backoff = backoff
        self.serial = serial
        self.done = 0

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                commands = self.api.commands(self.wait_s)
            except ServerError as exc:
                delay = self.backoff.next_delay()
                if isinstance(exc, ServerRefusedError) and exc.status_code == 404:
                    delay = max(delay, 60.0)  # a server older than this bridge: ask again rarely
                log.warning("device %s: commands: %s; next try in %.1f s", self.serial, exc, delay)
                self.stop.wait(delay)
                continue
            self.backoff.reset()
            for command in commands:
                self.answer(command)

    def answer(self, command: dict[str, Any]) -> None:
        command_id = str(command.get("id"))
        try:
            result = self.execute(str(command.get("kind")), command.get("params") or {})
            body: dict[str, Any] = {"ok": True, "result": result}
        except (CommandRefused, DeviceError, ValueError, OSError) as exc:
            body = {"ok": False, "error": str(exc)[:4000]}
        try:
            self.api.command_result(command_id, body)
            self.done += 1
        except ServerError as exc:  # expired, or the server went away: the person was told by now
            log.warning("device %s: the answer to command %s was not taken: %s", self.serial, command_id, exc)

    def execute(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        if kind == "inspect":
            return inspect(self.device)
        if kind == "click":
            if not self.run_lock.acquire(blocking=False):
                raise CommandRefused(
                    f"device {self.serial} is running a run: a click now would land in it; "
                    "inspect only, or wait until the run ends"
                )
            try:
                return click(self.device, int(params["x"]), int(params["y"]), self.settle_s)
            finally:
                self.run_lock.release()
        raise CommandRefused(f"this bridge does not know the command {kind!r}: update the bridge")
