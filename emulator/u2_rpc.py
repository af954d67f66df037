"""The uiautomator2 server's JSON-RPC: the envelope, dispatch, and the device-level methods.

Requests are `{"jsonrpc": "2.0", "id": N, "method": M, "params": [...]}` (`{}` for none). Answers
always carry `result` (null for void methods) or `error`; error messages are the Java exception
names the client looks for (`...UiObjectNotFoundException` becomes its `UiObjectNotFoundError`).

The methods work on the device's `PhoneState` through the same model code as the simulator.
This module has the device-level ones (info, dump, screenshot, keys, gestures, clipboard, toasts);
the selector-based ones (`objInfo`, `setText`, scrolling, ...) are in `emulator.u2_objects`, and
find nodes with `emulator.u2_selectors`, which follows UiSelector's rules. Everything runs on the
device's asyncio loop, so the phone is only touched from one thread; waits (`waitForExists`)
sleep on that loop and poll the phone.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from emulator.u2_objects import STEP_MS, ObjectMethods, U2Host, swipe_within
from emulator.u2_params import Params, RpcError
from emulator.u2_selectors import SelectorError
from interpreter.hierarchy import UiNode, to_android_xml

if TYPE_CHECKING:
    from emulator.framebuffer import Framebuffer

__all__ = ["U2Host", "U2Rpc"]

logger = logging.getLogger(__name__)

_DEFAULT_DENSITY = 420

# Key names uiautomator's pressKey accepts, as PhoneState.press_key names them (None: no effect
# on the app model, as volume keys do not change what is on screen).
_KEY_NAMES: dict[str, str | None] = {
    "home": "home", "back": "back", "menu": "menu", "search": "search", "enter": "enter",
    "delete": "delete", "del": "delete", "recent": "recent", "tab": "tab", "space": "space",
    "left": None, "right": None, "up": None, "down": None, "center": None, "dpad_center": None,
    "volume_up": None, "volume_down": None, "volume_mute": None, "camera": None, "power": "power",
}  # fmt: skip

# Android KeyEvent codes for the same keys.
_KEY_CODES: dict[int, str] = {
    3: "home", 4: "back", 19: "up", 20: "down", 21: "left", 22: "right", 23: "center",
    24: "volume_up", 25: "volume_down", 26: "power", 27: "camera", 61: "tab", 62: "space",
    66: "enter", 67: "delete", 82: "menu", 84: "search", 164: "volume_mute", 187: "recent",
    223: "sleep", 224: "wakeup",
}  # fmt: skip
_META_SHIFT = 0x1
# setOrientation's names → display rotation (quarter turns): left is 90°, right 270°.
_ORIENTATIONS = {
    "natural": 0, "n": 0, "0": 0, "left": 1, "l": 1, "90": 1,
    "upsidedown": 2, "u": 2, "180": 2, "right": 3, "r": 3, "270": 3,
}  # fmt: skip
# The package of the real server's app: its toasts (`makeToast`) carry it.
U2_SERVER_PACKAGE = "com.github.uiautomator"


Handler = Callable[[Params], Awaitable[Any]]


class U2Rpc(ObjectMethods):
    """Dispatches JSON-RPC calls to methods over one device's phone state.

    Each `rpc_<name>` coroutine (here and in `ObjectMethods`) answers the JSON-RPC method `<name>`
    with the parameters and result shapes of the real server (openatx android-uiautomator-server).
    """

    def __init__(self, device: U2Host) -> None:
        super().__init__(device)
        self._touch_down: tuple[float, float, float] | None = None
        # Made at the first screenshot (it imports the renderer): the screen painted ahead of the next one.
        self._framebuffer: Framebuffer | None = None
        self._methods: dict[str, Handler] = {
            name.removeprefix("rpc_"): getattr(self, name) for name in dir(self) if name.startswith("rpc_")
        }

    @property
    def method_names(self) -> list[str]:
        return sorted(self._methods)

    async def handle(self, body: bytes) -> bytes:
        """Answer one HTTP body with the JSON-RPC response body."""
        request_id: Any = None
        try:
            try:
                request = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise RpcError(-32700, "Parse error", f"the request body is not JSON: {exc}") from exc
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                raise RpcError(
                    -32600,
                    "Invalid Request",
                    'send {"jsonrpc": "2.0", "id": N, "method": ..., "params": [...]}',
                )
            request_id = request.get("id")
            result = await self.call(request["method"], request.get("params"))
            answer: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "result": result}
        except RpcError as exc:
            error = {"code": exc.code, "message": exc.message, "data": exc.data}
            answer = {"jsonrpc": "2.0", "id": request_id, "error": error}
        return json.dumps(answer, ensure_ascii=False).encode("utf-8")

    async def call(self, method: str, params: Any) -> Any:
        """Run one method; raises `RpcError` for every failure the client should see."""
        handler = self._methods.get(method)
        if handler is None:
            raise RpcError(
                -32601,
                "Method not found",
                f"the phoneflow emulator's uiautomator2 server has no method {method!r}; "
                f"it implements: {', '.join(self.method_names)}",
            )
        try:
            return await handler(Params(method, params))
        except RpcError:
            raise
        except SelectorError as exc:
            raise RpcError(-32602, "java.lang.IllegalArgumentException", f"{method}: {exc}") from exc
        except Exception as exc:  # an emulator bug must reach the client as an answer, not a dropped socket
            logger.exception("uiautomator2 method %s failed", method)
            raise RpcError(
                -32603, f"java.lang.RuntimeException: {type(exc).__name__}", f"{method}: {exc}"
            ) from exc

    # --- helpers ----------------------------------------------------------------------------

    def _key(self, name: str) -> bool:
        phone_key = name if name in ("wakeup", "sleep") else _KEY_NAMES.get(name)
        if phone_key is not None:
            self._device.press_key(phone_key)
        return True

    # --- device ----------------------------------------------------------------------------

    async def rpc_ping(self, p: Params) -> str:
        return "pong"

    async def rpc_deviceInfo(self, p: Params) -> dict[str, Any]:
        width, height = self._size()
        props = self._device.props
        density = int(props.get("ro.sf.lcd_density", _DEFAULT_DENSITY))
        sdk = int(props.get("ro.build.version.sdk", "34"))
        return {
            "currentPackageName": self.phone.foreground_package(),
            "displayWidth": width,
            "displayHeight": height,
            "displayRotation": self.phone.rotation,
            "displaySizeDpX": round(width * 160 / density),
            "displaySizeDpY": round(height * 160 / density),
            "productName": props.get("ro.product.name", "sdk_gphone64_x86_64"),
            "naturalOrientation": True,
            "screenOn": self._device.screen_on,
            "sdkInt": sdk,
        }

    async def rpc_windowSize(self, p: Params) -> dict[str, int]:
        width, height = self._size()
        return {"width": width, "height": height}

    async def rpc_dumpWindowHierarchy(self, p: Params) -> str:
        # `compressed` leaves out nodes "not important for accessibility"; every node of the app
        # model is one a person sees, so the dump is the same either way (DecorView's layers too,
        # which a phone would leave out).
        p.boolean(0, "compressed", False)
        max_depth = p.integer(1, "maxDepth", 50)
        if self._device.faults.dump is not None:
            return self._device.faults.dump
        root = _limit_depth(self.phone.hierarchy(), max_depth)
        xml = to_android_xml(root, rotation=self.phone.rotation)
        if self._framebuffer is not None:
            self._framebuffer.looked(self.phone)
        return xml

    async def rpc_takeScreenshot(self, p: Params) -> str:
        scale = p.number(0, "scale", 1.0)
        quality = p.integer(1, "quality", 100)
        if not 0 < scale <= 1:
            raise p.bad(f"scale must be in (0, 1], got {scale}")
        if not 0 <= quality <= 100:
            raise p.bad(f"quality must be 0..100, got {quality}")
        if self._device.faults.screenshot_delay_s:
            await asyncio.sleep(self._device.faults.screenshot_delay_s)
        if self._device.faults.screenshot is not None:
            return base64.b64encode(self._device.faults.screenshot).decode("ascii")
        if self._framebuffer is None:
            # Imported here: Pillow takes tens of milliseconds to import, and the server must answer its
            # first /ping right after app_process starts it (the client waits 0.5 s after a miss).
            from emulator.framebuffer import Framebuffer

            self._framebuffer = Framebuffer()
        data = await self._framebuffer.jpeg(self.phone, quality, scale)
        return base64.b64encode(data).decode("ascii")

    async def rpc_setOrientation(self, p: Params) -> None:
        wanted = p.string(0, "orientation").lower()
        rotation = _ORIENTATIONS.get(wanted)
        if rotation is None:
            raise RpcError(
                -32602,
                "java.lang.IllegalArgumentException",
                f"setOrientation {wanted!r}: use natural (n), left (l), right (r) or upsidedown (u)",
            )
        self.phone.set_rotation(rotation)

    async def rpc_freezeRotation(self, p: Params) -> None:
        p.boolean(0, "freeze", True)

    async def rpc_wakeUp(self, p: Params) -> None:
        self._device.screen_on = True

    async def rpc_sleep(self, p: Params) -> None:
        self._device.screen_on = False

    async def rpc_openNotification(self, p: Params) -> bool:
        self.phone.open_shade(quick_settings=False)
        return True

    async def rpc_openQuickSettings(self, p: Params) -> bool:
        self.phone.open_shade(quick_settings=True)
        return True

    async def rpc_getLastTraversedText(self, p: Params) -> None:
        return None

    async def rpc_clearLastTraversedText(self, p: Params) -> None:
        return None

    # --- toasts and clipboard --------------------------------------------------------------

    async def rpc_getLastToast(self, p: Params) -> str | None:
        return self.phone.last_toast()

    async def rpc_clearLastToast(self, p: Params) -> None:
        self.phone.clear_toast()

    async def rpc_makeToast(self, p: Params) -> bool:
        # A toast the test itself shows: drawn as the server app's toast, for its duration.
        text = p.string(0, "text")
        duration_ms = p.number(1, "duration", 1000)
        self.phone.show_toast(text, U2_SERVER_PACKAGE, duration_ms / 1000)
        return True

    async def rpc_setClipboard(self, p: Params) -> None:
        p.optional_string(0, "label")
        self.phone.clipboard = p.string(1, "text")

    async def rpc_getClipboard(self, p: Params) -> str | None:
        return self.phone.clipboard

    async def rpc_pasteClipboard(self, p: Params) -> None:
        if self.phone.clipboard:
            self.phone.input_text(self.phone.clipboard)

    async def rpc_clearInputText(self, p: Params) -> None:
        self.phone.clear_text()

    # --- gestures and keys -----------------------------------------------------------------

    async def rpc_click(self, p: Params) -> bool:
        if p.is_selector(0):
            found = self._must_find(p.selector(0))
            self._tap_node(found)
            return True
        x, y = p.number(0, "x"), p.number(1, "y")
        p.integer(2, "durationMs", 0)  # a long press: the app model has no long-press actions
        self._tap(x, y)
        return True

    async def rpc_longClick(self, p: Params) -> bool:
        self._tap_node(self._must_find(p.selector(0)))
        return True

    async def rpc_clickAndWaitForNewWindow(self, p: Params) -> bool:
        self._tap_node(self._must_find(p.selector(0)))
        return True

    async def rpc_swipe(self, p: Params) -> bool:
        if p.is_selector(0):
            found = self._must_find(p.selector(0))
            direction = p.string(1, "direction").lower()
            steps = p.integer(2, "steps", 10)
            await self._swipe(*swipe_within(found.visible, direction, p), steps)
            return True
        fx, fy, tx, ty = (p.number(i, name) for i, name in enumerate(("fromX", "fromY", "toX", "toY")))
        await self._swipe(fx, fy, tx, ty, p.integer(4, "steps", 55))
        return True

    async def rpc_drag(self, p: Params) -> bool:
        sx, sy, ex, ey = (p.number(i, name) for i, name in enumerate(("startX", "startY", "endX", "endY")))
        await self._swipe(sx, sy, ex, ey, p.integer(4, "steps", 55))
        return True

    async def rpc_swipePoints(self, p: Params) -> bool:
        points = p.number_list(0, "points")
        if len(points) < 4 or len(points) % 2:
            raise p.bad(f"points must be x,y pairs (at least two points), got {len(points)} numbers")
        steps = p.integer(1, "segmentSteps", 10)
        await self._swipe(points[0], points[1], points[-2], points[-1], steps * (len(points) // 2 - 1))
        return True

    async def rpc_dragTo(self, p: Params) -> bool:
        found = self._must_find(p.selector(0))
        fx, fy = found.visible.center
        if p.is_selector(1):
            target = self._must_find(p.selector(1))
            tx, ty = target.visible.center
            steps = p.integer(2, "steps", 100)
        else:
            tx, ty = int(p.number(1, "x")), int(p.number(2, "y"))
            steps = p.integer(3, "steps", 100)
        await self._swipe(fx, fy, tx, ty, steps)
        return True

    async def rpc_injectInputEvent(self, p: Params) -> bool:
        action = p.integer(0, "action")
        x, y = p.number(1, "x"), p.number(2, "y")
        p.integer(3, "metaState", 0)
        if action == 0:  # ACTION_DOWN
            self._touch_down = (x, y, time.monotonic())
        elif action == 1 and self._touch_down is not None:  # ACTION_UP ends the gesture
            sx, sy, started = self._touch_down
            self._touch_down = None
            if abs(x - sx) < 10 and abs(y - sy) < 10:
                self._tap(x, y)
            else:
                # The finger already took its time between the two events.
                await self._swipe(
                    sx, sy, x, y, int((time.monotonic() - started) * 1000 / STEP_MS), wait=False
                )
        return True

    async def rpc_pressKey(self, p: Params) -> bool:
        name = p.string(0, "key").lower()
        if name not in _KEY_NAMES:
            raise p.bad(f"unknown key {name!r}; use one of {', '.join(sorted(_KEY_NAMES))} or pressKeyCode")
        return self._key(name)

    async def rpc_pressKeyCode(self, p: Params) -> bool:
        code = p.integer(0, "keyCode")
        meta = p.integer(1, "metaState", 0)
        char = _keycode_char(code, bool(meta & _META_SHIFT))
        if char is not None:
            self.phone.input_text(char)
            return True
        name = _KEY_CODES.get(code)
        if name is None:
            raise p.bad(f"key code {code} is not supported by the phoneflow emulator")
        return self._key(name)


def _keycode_char(code: int, shift: bool) -> str | None:
    if 7 <= code <= 16:  # KEYCODE_0..KEYCODE_9
        return str(code - 7)
    if 29 <= code <= 54:  # KEYCODE_A..KEYCODE_Z
        letter = chr(ord("a") + code - 29)
        return letter.upper() if shift else letter
    return None


def _limit_depth(root: UiNode, max_depth: int) -> UiNode:
    """The tree cut below `max_depth` levels of nodes (the root itself, not written, is level 0)."""
    if max_depth <= 0 or _depth(root) <= max_depth:
        return root
    return _copy_to_depth(root, max_depth)


def _depth(node: UiNode) -> int:
    return 1 + max((_depth(child) for child in node.children), default=0) if node.children else 0


def _copy_to_depth(node: UiNode, levels: int) -> UiNode:
    children = [_copy_to_depth(child, levels - 1) for child in node.children] if levels > 0 else []
    return replace(node, children=children)
