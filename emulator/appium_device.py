"""The Appium UiAutomator2 server's routes that are not about one element.

Page source, screenshots, window size, keys (`press_keycode` takes Android key codes), back,
clipboard, device and display facts, orientation, W3C actions and Appium's gestures
(`/appium/gestures/click|long_click|double_click|swipe|scroll|drag|fling|pinch_open|pinch_close`:
no widget of the app model zooms, so a pinch changes nothing, as on such screens of a phone), the
notification shade. Several simultaneous W3C pointers are refused with a message.
"""

from __future__ import annotations

import asyncio
import base64
import math
from typing import TYPE_CHECKING, Any

from emulator import properties
from emulator.android_commands import KEY_CODES
from emulator.appium_actions import perform_actions
from emulator.appium_elements import element_id, resolve, set_text
from emulator.appium_server import AppiumError, Handler, Request
from emulator.appium_source import page_source
from emulator.u2_selectors import walk_visible
from interpreter.appmodel import screen
from interpreter.appmodel.layout import STATUS_BAR_HEIGHT
from interpreter.hierarchy import Bounds

if TYPE_CHECKING:
    from emulator.device import VirtualDevice

__all__ = ["device_routes", "press_keycode"]

_DIRECTIONS = ("up", "down", "left", "right")
_FLING_SPEED = 7500  # px/s: the fling gesture's default speed


def press_keycode(device: VirtualDevice, code: int) -> None:
    """An Android key code on the phone: the keys the app model acts on act, others do nothing."""
    device.press_key(KEY_CODES.get(code, f"keycode_{code}"))


def _point(value: Any, name: str) -> tuple[float, float]:
    if not isinstance(value, dict) or not all(isinstance(value.get(k), int | float) for k in ("x", "y")):
        raise AppiumError.invalid_argument(
            f"'{name}' must be an object with numbers 'x' and 'y', got {value!r}"
        )
    return float(value["x"]), float(value["y"])


def _area(request: Request, device: VirtualDevice) -> Bounds:
    """The gesture's area: its `origin` element's bounds, else its `area` rectangle."""
    ident = element_id(request.body.get("origin"))
    if ident is not None:
        return resolve(device, request.current, ident).visible
    area = request.body.get("area")
    if not isinstance(area, dict) or not all(
        isinstance(area.get(k), int | float) for k in ("left", "top", "width", "height")
    ):
        raise AppiumError.invalid_argument(
            "The gesture area coordinates (left, top, width, height) must be provided if element is not set"
        )
    left, top = int(area["left"]), int(area["top"])
    if area["width"] < 0 or area["height"] < 0:
        raise AppiumError.invalid_argument("Rectangle width and height must not be negative")
    return Bounds(left, top, left + int(area["width"]), top + int(area["height"]))


def _direction(request: Request) -> str:
    direction = str(request.require("direction", str)).lower()
    if direction not in _DIRECTIONS:
        raise AppiumError.invalid_argument(f"direction must be one of {[d.upper() for d in _DIRECTIONS]}")
    return direction


def _stroke(area: Bounds, direction: str, percent: float) -> tuple[int, int, int, int]:
    """A finger path across `percent` of the area, moving in `direction`, kept inside the area."""
    cx, cy = area.center
    dx, dy = int(area.width * percent / 2), int(area.height * percent / 2)
    x1, y1, x2, y2 = {
        "up": (cx, cy + dy, cx, cy - dy),
        "down": (cx, cy - dy, cx, cy + dy),
        "left": (cx + dx, cy, cx - dx, cy),
        "right": (cx - dx, cy, cx + dx, cy),
    }[direction]

    def inside(x: int, y: int) -> tuple[int, int]:
        return min(max(x, area.left), area.right - 1), min(max(y, area.top), area.bottom - 1)

    return (*inside(x1, y1), *inside(x2, y2))


def device_routes(device: VirtualDevice) -> list[tuple[str, str, Handler]]:
    phone = device.phone

    def size() -> tuple[int, int]:
        return device.phone.width, device.phone.height

    async def source(request: Request) -> Any:
        width, height = size()
        return page_source(device.phone.hierarchy(), width, height, rotation=device.phone.rotation)[0]

    async def screenshot(request: Request) -> Any:
        if device.faults.screenshot_delay_s:
            await asyncio.sleep(device.faults.screenshot_delay_s)
        return base64.b64encode(screen.render_png(device.phone)).decode()

    async def window_size(request: Request) -> Any:
        width, height = size()
        return {"width": width, "height": height}

    async def keycode(request: Request) -> Any:
        press_keycode(device, int(request.require("keycode", int)))

    async def back(request: Request) -> Any:
        device.phone.press_key("back")

    async def keys(request: Request) -> Any:
        width, height = size()
        focused = next(
            (f for f in walk_visible(device.phone.hierarchy(), width, height) if f.node.focused), None
        )
        if focused is None:
            raise AppiumError.no_such_element("There is no focused element to send keys to")
        text = request.body.get("text")
        if not isinstance(text, str):
            value = request.body.get("value")
            text = "".join(value) if isinstance(value, list) else None
        if text is None:
            raise AppiumError.invalid_argument("'text' is mandatory for this request")
        set_text(device, focused, text, bool(request.body.get("replace")))

    async def get_clipboard(request: Request) -> Any:
        kind = str(request.body.get("contentType") or "plaintext").lower()
        if kind != "plaintext":
            raise AppiumError.invalid_argument(
                f"Only '[PLAINTEXT]' content types are supported. '{kind}' is given"
            )
        return base64.b64encode(device.phone.clipboard.encode()).decode()

    async def set_clipboard(request: Request) -> Any:
        content = request.require("content", str)
        try:
            device.phone.clipboard = base64.b64decode(content, validate=True).decode("utf-8")
        except ValueError as exc:
            raise AppiumError.invalid_argument(f"'content' must be base64-encoded UTF-8 text: {exc}") from exc

    async def device_info(request: Request) -> Any:
        props = device.props
        width, height = size()
        return {
            "androidId": device.settings["secure"].get("android_id"),
            "manufacturer": props.get("ro.product.manufacturer"),
            "model": props.get("ro.product.model"),
            "brand": props.get("ro.product.brand"),
            "apiVersion": props.get("ro.build.version.sdk"),
            "platformVersion": props.get("ro.build.version.release"),
            "carrierName": props.get("gsm.operator.alpha"),
            "realDisplaySize": f"{width}x{height}",
            "displayDensity": properties.DENSITY,
            "networks": [],
            "locale": props.get("persist.sys.locale", "en-US").replace("-", "_"),
            "timeZone": props.get("persist.sys.timezone", "UTC"),
            "bluetooth": {"state": "OFF"},
        }

    async def system_bars(request: Request) -> Any:
        return {"statusBar": STATUS_BAR_HEIGHT}

    async def pixel_ratio(request: Request) -> Any:
        return properties.DENSITY / 160

    async def display_density(request: Request) -> Any:
        return properties.DENSITY

    async def battery(request: Request) -> Any:
        battery = device.battery  # status: BatteryManager.BATTERY_STATUS_*
        return {"level": battery.level / 100, "status": battery.current_status()}

    async def orientation(request: Request) -> Any:
        return "LANDSCAPE" if device.phone.rotation % 2 else "PORTRAIT"

    async def set_orientation(request: Request) -> Any:
        wanted = str(request.require("orientation", str)).upper()
        if wanted not in ("PORTRAIT", "LANDSCAPE"):
            raise AppiumError.invalid_argument(f"orientation must be PORTRAIT or LANDSCAPE, not {wanted!r}")
        device.phone.set_rotation(1 if wanted == "LANDSCAPE" else 0)
        return wanted

    async def rotation(request: Request) -> Any:
        return {"x": 0, "y": 0, "z": device.phone.rotation * 90}

    async def no_alert(request: Request) -> Any:
        raise AppiumError("no such alert", "No alert is open", 404)

    async def actions(request: Request) -> Any:
        await perform_actions(device, request)

    async def gesture_click(request: Request) -> Any:
        x, y = _gesture_point(request)
        device.phone.tap(x, y)

    async def gesture_double_click(request: Request) -> Any:
        x, y = _gesture_point(request)
        device.phone.tap(x, y)
        device.phone.tap(x, y)

    def _gesture_point(request: Request) -> tuple[float, float]:
        ident = element_id(request.body.get("origin"))
        offset = request.body.get("offset")
        if ident is not None:
            bounds = resolve(device, request.current, ident).visible
            if offset is None:
                return bounds.center
            dx, dy = _point(offset, "offset")
            return bounds.left + dx, bounds.top + dy
        if offset is None:
            raise AppiumError.invalid_argument(
                "Either an element 'origin' or 'offset' coordinates must be set"
            )
        return _point(offset, "offset")

    async def gesture_swipe(request: Request) -> Any:
        percent = float(request.require("percent", (int, float)))
        device.phone.swipe(*_stroke(_area(request, device), _direction(request), percent))

    async def gesture_scroll(request: Request) -> Any:
        percent = float(request.require("percent", (int, float)))
        # A scroll *towards* a direction moves the finger the other way.
        opposite = {"up": "down", "down": "up", "left": "right", "right": "left"}[_direction(request)]
        before = device.phone.hierarchy()
        device.phone.swipe(*_stroke(_area(request, device), opposite, percent))
        return device.phone.hierarchy() is not before  # true while there is more to scroll

    async def gesture_fling(request: Request) -> Any:
        opposite = {"up": "down", "down": "up", "left": "right", "right": "left"}[_direction(request)]
        before = device.phone.hierarchy()
        x1, y1, x2, y2 = _stroke(_area(request, device), opposite, 0.8)
        speed = float(request.body.get("speed") or _FLING_SPEED)  # px/s
        device.phone.swipe(x1, y1, x2, y2, 1000 * math.hypot(x2 - x1, y2 - y1) / max(speed, 1.0))
        return device.phone.hierarchy() is not before

    async def gesture_drag(request: Request) -> Any:
        end = _point(request.body.get("end"), "end")
        ident = element_id(request.body.get("origin"))
        if ident is not None:
            start: tuple[float, float] = resolve(device, request.current, ident).visible.center
        else:
            start = _point(request.body.get("start"), "start")
        device.phone.swipe(start[0], start[1], end[0], end[1])

    async def pinch(request: Request) -> Any:
        request.require("percent", (int, float))
        _area(request, device)  # the element or area must be there; nothing in it zooms
        return None

    async def notifications(request: Request) -> Any:
        device.phone.open_shade(quick_settings=False)  # as the u2 server's openNotification
        return None

    async def nothing(request: Request) -> Any:
        return None

    base = "/session/:sessionId"
    gestures = f"{base}/appium/gestures"
    del phone
    return [
        ("GET", f"{base}/source", source),
        ("GET", f"{base}/screenshot", screenshot),
        ("GET", f"{base}/window/:windowHandle/size", window_size),
        ("POST", f"{base}/appium/device/press_keycode", keycode),
        ("POST", f"{base}/appium/device/long_press_keycode", keycode),
        ("POST", f"{base}/back", back),
        ("POST", f"{base}/keys", keys),
        ("POST", f"{base}/appium/device/get_clipboard", get_clipboard),
        ("POST", f"{base}/appium/device/set_clipboard", set_clipboard),
        ("GET", f"{base}/appium/device/info", device_info),
        ("GET", f"{base}/appium/device/system_bars", system_bars),
        ("GET", f"{base}/appium/device/pixel_ratio", pixel_ratio),
        ("GET", f"{base}/appium/device/display_density", display_density),
        ("GET", f"{base}/appium/device/battery_info", battery),
        ("GET", f"{base}/orientation", orientation),
        ("POST", f"{base}/orientation", set_orientation),
        ("GET", f"{base}/rotation", rotation),
        ("GET", f"{base}/alert/text", no_alert),
        ("POST", f"{base}/alert/accept", no_alert),
        ("POST", f"{base}/alert/dismiss", no_alert),
        ("POST", f"{base}/actions", actions),
        ("POST", f"{gestures}/click", gesture_click),
        ("POST", f"{gestures}/long_click", gesture_click),
        ("POST", f"{gestures}/double_click", gesture_double_click),
        ("POST", f"{gestures}/swipe", gesture_swipe),
        ("POST", f"{gestures}/scroll", gesture_scroll),
        ("POST", f"{gestures}/fling", gesture_fling),
        ("POST", f"{gestures}/drag", gesture_drag),
        ("POST", f"{gestures}/pinch_open", pinch),
        ("POST", f"{gestures}/pinch_close", pinch),
        ("POST", f"{base}/appium/device/open_notifications", notifications),
        ("POST", f"{base}/appium/reset_ax_cache", nothing),
    ]
