"""The uiautomator2 server's JSON-RPC: the envelope, parameter checks, and every method.

Requests are `{"jsonrpc": "2.0", "id": N, "method": M, "params": [...]}` (`{}` for none). Answers
always carry `result` (null for void methods) or `error`; error messages are the Java exception
names the client looks for (`...UiObjectNotFoundException` becomes its `UiObjectNotFoundError`).

The methods work on the device's `PhoneState` through the same model code as the simulator.
Object methods (`objInfo`, `setText`, ...) find nodes with `emulator.u2_selectors`, which follows
UiSelector's rules. Everything runs on the device's asyncio loop, so the phone is only touched
from one thread; waits (`waitForExists`) sleep on that loop and poll the phone.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from emulator.u2_params import NOT_FOUND, Params, RpcError
from emulator.u2_selectors import Located, SelectorError, U2Selector, locate, locate_all
from interpreter.appmodel import PhoneState
from interpreter.hierarchy import Bounds, UiNode, to_android_xml

__all__ = ["U2Host", "U2Rpc"]

logger = logging.getLogger(__name__)

_POLL_S = 0.05
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


class U2Host(Protocol):
    """What the server needs from the virtual device (H4a's `VirtualDevice` has these)."""

    @property
    def phone(self) -> PhoneState: ...

    @property
    def props(self) -> Mapping[str, str]: ...


Handler = Callable[[Params], Awaitable[Any]]


class U2Rpc:
    """Dispatches JSON-RPC calls to methods over one device's phone state."""

    def __init__(self, device: U2Host) -> None:
        self._device = device
        self.screen_on = True
        self.rotation = 0
        self._touch_down: tuple[float, float, float] | None = None
        self._made_toast: tuple[str, float] | None = None
        self._methods: dict[str, Handler] = {
            name.removeprefix("rpc_"): getattr(self, name) for name in dir(self) if name.startswith("rpc_")
        }

    @property
    def phone(self) -> PhoneState:
        return self._device.phone

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

    def _size(self) -> tuple[int, int]:
        return self.phone.width, self.phone.height

    def _find(self, selector: U2Selector) -> Located | None:
        width, height = self._size()
        return locate(self.phone.hierarchy(), selector, width, height)

    def _must_find(self, selector: U2Selector) -> Located:
        found = self._find(selector)
        if found is None:
            raise RpcError(
                NOT_FOUND, "androidx.test.uiautomator.UiObjectNotFoundException", selector.description
            )
        return found

    async def _wait_for(self, selector: U2Selector, timeout_ms: int, present: bool) -> bool:
        deadline = time.monotonic() + max(timeout_ms, 0) / 1000
        while True:
            if (self._find(selector) is not None) == present:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(_POLL_S, left))

    def _tap(self, x: float, y: float) -> None:
        self.phone.tap(int(x), int(y))

    def _tap_node(self, found: Located) -> None:
        x, y = found.visible.center
        self.phone.tap(x, y)

    def _swipe(self, fx: float, fy: float, tx: float, ty: float, steps: int) -> None:
        # The app model scrolls by distance only; the duration (steps × 5 ms) does not matter to it.
        del steps
        self.phone.swipe(fx, fy, tx, ty)

    def _key(self, name: str) -> bool:
        if name == "power":
            self.screen_on = not self.screen_on
            return True
        if name in ("wakeup", "sleep"):
            self.screen_on = name == "wakeup"
            return True
        phone_key = _KEY_NAMES.get(name)
        if phone_key is not None:
            self.phone.press_key(phone_key)
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
            "displayRotation": self.rotation,
            "displaySizeDpX": round(width * 160 / density),
            "displaySizeDpY": round(height * 160 / density),
            "productName": props.get("ro.product.name", "sdk_gphone64_x86_64"),
            "naturalOrientation": True,
            "screenOn": self.screen_on,
            "sdkInt": sdk,
        }

    async def rpc_windowSize(self, p: Params) -> dict[str, int]:
        width, height = self._size()
        return {"width": width, "height": height}

    async def rpc_dumpWindowHierarchy(self, p: Params) -> str:
        p.boolean(0, "compressed", False)
        max_depth = p.integer(1, "maxDepth", 50)
        root = _limit_depth(self.phone.hierarchy(), max_depth)
        return to_android_xml(root, rotation=self.rotation)

    async def rpc_takeScreenshot(self, p: Params) -> str:
        scale = p.number(0, "scale", 1.0)
        quality = p.integer(1, "quality", 100)
        if not 0 < scale <= 1:
            raise p.bad(f"scale must be in (0, 1], got {scale}")
        if not 0 <= quality <= 100:
            raise p.bad(f"quality must be 0..100, got {quality}")
        # Imported here: Pillow takes tens of milliseconds to import, and the server must answer its
        # first /ping right after app_process starts it (the client waits 0.5 s after a miss).
        from emulator import screen

        return base64.b64encode(screen.render_jpeg(self.phone, quality, scale)).decode("ascii")

    async def rpc_setOrientation(self, p: Params) -> None:
        wanted = p.string(0, "orientation")
        if wanted.lower() not in ("n", "natural", "0"):
            raise RpcError(
                -32602,
                "java.lang.IllegalArgumentException",
                f"setOrientation {wanted!r}: the phoneflow emulator's screen is portrait only; use 'natural'",
            )
        self.rotation = 0

    async def rpc_freezeRotation(self, p: Params) -> None:
        p.boolean(0, "freeze", True)

    async def rpc_wakeUp(self, p: Params) -> None:
        self.screen_on = True

    async def rpc_sleep(self, p: Params) -> None:
        self.screen_on = False

    async def rpc_openNotification(self, p: Params) -> bool:
        return False  # the app model has no notification shade

    async def rpc_openQuickSettings(self, p: Params) -> bool:
        return False

    async def rpc_getLastTraversedText(self, p: Params) -> None:
        return None

    async def rpc_clearLastTraversedText(self, p: Params) -> None:
        return None

    # --- toasts and clipboard --------------------------------------------------------------

    async def rpc_getLastToast(self, p: Params) -> str | None:
        made = self._made_toast
        if made is not None and time.monotonic() < made[1]:
            return made[0]
        return self.phone.last_toast()

    async def rpc_clearLastToast(self, p: Params) -> None:
        self._made_toast = None
        self.phone.clear_toast()

    async def rpc_makeToast(self, p: Params) -> bool:
        # A toast the test itself shows; the app model has no way to put it on screen, so it
        # only comes back through getLastToast, for its duration.
        text = p.string(0, "text")
        duration_ms = p.integer(1, "duration", 1000)
        self._made_toast = (text, time.monotonic() + duration_ms / 1000)
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
            self._swipe(*_swipe_within(found.visible, direction, p), steps)
            return True
        fx, fy, tx, ty = (p.number(i, name) for i, name in enumerate(("fromX", "fromY", "toX", "toY")))
        self._swipe(fx, fy, tx, ty, p.integer(4, "steps", 55))
        return True

    async def rpc_drag(self, p: Params) -> bool:
        sx, sy, ex, ey = (p.number(i, name) for i, name in enumerate(("startX", "startY", "endX", "endY")))
        self._swipe(sx, sy, ex, ey, p.integer(4, "steps", 55))
        return True

    async def rpc_swipePoints(self, p: Params) -> bool:
        points = p.number_list(0, "points")
        if len(points) < 4 or len(points) % 2:
            raise p.bad(f"points must be x,y pairs (at least two points), got {len(points)} numbers")
        steps = p.integer(1, "segmentSteps", 10)
        self._swipe(points[0], points[1], points[-2], points[-1], steps * (len(points) // 2 - 1))
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
        self._swipe(fx, fy, tx, ty, steps)
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
                self._swipe(sx, sy, x, y, int((time.monotonic() - started) * 200))
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

    # --- objects ---------------------------------------------------------------------------

    async def rpc_exist(self, p: Params) -> bool:
        return self._find(p.selector(0)) is not None

    async def rpc_waitForExists(self, p: Params) -> bool:
        return await self._wait_for(p.selector(0), p.integer(1, "timeout", 0), present=True)

    async def rpc_waitUntilGone(self, p: Params) -> bool:
        return await self._wait_for(p.selector(0), p.integer(1, "timeout", 0), present=False)

    async def rpc_count(self, p: Params) -> int:
        width, height = self._size()
        return len(locate_all(self.phone.hierarchy(), p.selector(0), width, height))

    async def rpc_objInfo(self, p: Params) -> dict[str, Any]:
        return _obj_info(self._must_find(p.selector(0)))

    async def rpc_objInfoOfAllInstances(self, p: Params) -> list[dict[str, Any]]:
        width, height = self._size()
        return [
            _obj_info(found) for found in locate_all(self.phone.hierarchy(), p.selector(0), width, height)
        ]

    async def rpc_getText(self, p: Params) -> str:
        return self._must_find(p.selector(0)).node.text

    async def rpc_setText(self, p: Params) -> bool:
        found = self._must_find(p.selector(0))
        text = p.optional_string(1, "text") or ""
        if not found.node.editable:
            return False  # ACTION_SET_TEXT fails on a widget that takes no text
        # Focus without clicking: setting text runs no click handlers on a real phone either.
        self.phone.set_focus(found.node.bounds)
        self.phone.clear_text()
        if text:
            self.phone.input_text(text)
        return True

    async def rpc_clearTextField(self, p: Params) -> None:
        found = self._must_find(p.selector(0))
        if found.node.editable:
            self.phone.set_focus(found.node.bounds)
            self.phone.clear_text()

    # --- scrolling -------------------------------------------------------------------------

    async def _scroll_once(self, p: Params, forward: bool, steps: int, vertical: bool | None = None) -> bool:
        """One swipe across the scrollable; True when the screen changed (there was more to see)."""
        found = self._must_find(p.selector(0))
        if vertical is None:
            vertical = p.boolean(1, "isVertical", True)
        before = _fingerprint(self.phone.hierarchy())
        direction = ("up" if forward else "down") if vertical else ("left" if forward else "right")
        self._swipe(*_swipe_within(found.visible, direction, p), steps)
        return _fingerprint(self.phone.hierarchy()) != before

    async def rpc_scrollForward(self, p: Params) -> bool:
        return await self._scroll_once(p, True, p.integer(2, "steps", 55))

    async def rpc_scrollBackward(self, p: Params) -> bool:
        return await self._scroll_once(p, False, p.integer(2, "steps", 55))

    async def rpc_flingForward(self, p: Params) -> bool:
        return await self._scroll_once(p, True, 5)

    async def rpc_flingBackward(self, p: Params) -> bool:
        return await self._scroll_once(p, False, 5)

    async def _scroll_all(self, p: Params, forward: bool, steps: int) -> bool:
        max_swipes = p.integer(2, "maxSwipes", 500)
        for _ in range(max_swipes):
            if not await self._scroll_once(p, forward, steps):
                break
        return True

    async def rpc_scrollToBeginning(self, p: Params) -> bool:
        return await self._scroll_all(p, False, p.integer(3, "steps", 55))

    async def rpc_scrollToEnd(self, p: Params) -> bool:
        return await self._scroll_all(p, True, p.integer(3, "steps", 55))

    async def rpc_flingToBeginning(self, p: Params) -> bool:
        return await self._scroll_all(p, False, 5)

    async def rpc_flingToEnd(self, p: Params) -> bool:
        return await self._scroll_all(p, True, 5)

    async def rpc_scrollTo(self, p: Params) -> bool:
        """Scroll forward until `params[1]` shows (`[scrollable, target, isVertical]`)."""
        target = p.selector(1)
        vertical = p.boolean(2, "isVertical", True)
        for forward in (True, False):  # below first, then back up above where we started
            for _ in range(30):  # UiScrollable's default maximum number of swipes
                if self._find(target) is not None:
                    return True
                if not await self._scroll_once(p, forward, 55, vertical):
                    break
        return self._find(target) is not None

    # --- what the emulator does not model --------------------------------------------------

    async def _no_multi_touch(self, p: Params) -> Any:
        raise RpcError(
            -32001,
            "java.lang.UnsupportedOperationException",
            f"{p.method} is not supported by the phoneflow emulator: the app model has no multi-touch "
            "gestures; use swipe or drag",
        )

    async def _no_handles(self, p: Params) -> Any:
        raise RpcError(
            -32001,
            "java.lang.UnsupportedOperationException",
            f"{p.method} is not supported by the phoneflow emulator: it returns a handle to an object kept "
            "in the server, which this server does not keep; use d(...).child(text=...) or "
            "d(...).sibling(...) selectors, or d.xpath(...)",
        )

    rpc_gesture = rpc_pinchIn = rpc_pinchOut = _no_multi_touch
    rpc_childByText = rpc_childByDescription = rpc_childByInstance = _no_handles
    rpc_getChild = rpc_getFromParent = _no_handles


def _obj_info(found: Located) -> dict[str, Any]:
    node = found.node
    return {
        "bounds": _bounds_dict(node.bounds),
        "visibleBounds": _bounds_dict(found.visible),
        "childCount": len(node.children),
        "className": node.class_name,
        "contentDescription": node.content_desc or None,
        "packageName": node.package,
        "resourceName": node.resource_id or None,
        "text": node.text,
        "checkable": node.checkable,
        "checked": node.checked,
        "clickable": node.clickable,
        "enabled": node.enabled,
        "focusable": node.clickable or node.editable,
        "focused": node.focused,
        "longClickable": False,
        "scrollable": node.scrollable,
        "selected": node.selected,
    }


def _bounds_dict(bounds: Bounds) -> dict[str, int]:
    return {"top": bounds.top, "bottom": bounds.bottom, "left": bounds.left, "right": bounds.right}


def _swipe_within(bounds: Bounds, direction: str, p: Params) -> tuple[int, int, int, int]:
    """A finger path across the middle 80% of `bounds`, moving in `direction`."""
    cx, cy = bounds.center
    dx, dy = bounds.width * 2 // 5, bounds.height * 2 // 5
    paths = {
        "up": (cx, cy + dy, cx, cy - dy),
        "down": (cx, cy - dy, cx, cy + dy),
        "left": (cx + dx, cy, cx - dx, cy),
        "right": (cx - dx, cy, cx + dx, cy),
    }
    if direction not in paths:
        raise p.bad(f"direction must be one of up, down, left, right, got {direction!r}")
    return paths[direction]


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


def _fingerprint(root: UiNode) -> tuple[tuple[str, str, Bounds], ...]:
    return tuple((n.text, n.resource_id, n.bounds) for n in root.walk())
