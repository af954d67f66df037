"""W3C actions (`POST /session/:id/actions`) on the virtual device.

Input sources are walked tick by tick as the W3C spec says. A touch pointer that goes down and
up within the touch slop is a tap where it went down (a long press too: the app model has no
long-click handlers); one that moves further is a swipe from where it went down to where it
went up (the app model scrolls by distance). `pause` waits (up to 2 s a pause). Key sources type
their characters into the focused field; WebDriver's special keys map to Android keys
(Backspace → delete, Enter/Return → enter, Tab, Space). Several pointers down at once are
multi-touch, which the app model does not have: refused with a message.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator.appium_server import AppiumError, Request

if TYPE_CHECKING:
    from emulator.device import VirtualDevice

__all__ = ["perform_actions"]

_TOUCH_SLOP = 10  # px a finger may move and still tap
_MAX_PAUSE_S = 2.0
# WebDriver's special key code points → the keys the phone knows.
_SPECIAL_KEYS = {
    "\ue003": "delete",
    "\ue004": "tab",
    "\ue006": "enter",
    "\ue007": "enter",
    "\ue00c": "back",  # Escape
    "\ue00d": "space",
    "\ue017": "forward_delete",
}


@dataclass
class _Pointer:
    x: float = 0.0
    y: float = 0.0
    down_at: tuple[float, float] | None = None
    moved_ms: float = 0.0  # the durations of its moves since it went down


def _number(item: dict[str, Any], key: str, default: float | None = None) -> float:
    value = item.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise AppiumError.invalid_argument(f"action item {item!r}: '{key}' must be a number")
    return float(value)


async def perform_actions(device: VirtualDevice, request: Request) -> None:
    from emulator.appium_elements import element_id, resolve

    sources = request.body.get("actions")
    if not isinstance(sources, list) or not all(isinstance(s, dict) for s in sources):
        raise AppiumError.invalid_argument("'actions' must be a list of input sources")
    pointers = {id(s): _Pointer() for s in sources if s.get("type") == "pointer"}
    ticks = max((len(s.get("actions") or []) for s in sources), default=0)
    phone = device.phone
    for tick in range(ticks):
        pause = 0.0
        for source in sources:
            items = source.get("actions") or []
            if tick >= len(items):
                continue
            item = items[tick]
            if not isinstance(item, dict):
                raise AppiumError.invalid_argument(f"action item {item!r} is not an object")
            kind = item.get("type")
            if kind == "pause":
                pause = max(pause, _number(item, "duration", 0) / 1000)
            elif source.get("type") == "key":
                _key(device, item)
            elif source.get("type") == "pointer":
                pointer = pointers[id(source)]
                if kind == "pointerMove":
                    origin = item.get("origin", "viewport")
                    x, y = _number(item, "x", 0), _number(item, "y", 0)
                    if origin == "pointer":
                        x, y = pointer.x + x, pointer.y + y
                    elif origin != "viewport":
                        ident = element_id(origin)
                        if ident is None:
                            raise AppiumError.invalid_argument(f"unknown pointerMove origin {origin!r}")
                        cx, cy = resolve(device, request.current, ident).visible.center
                        x, y = cx + x, cy + y
                    pointer.x, pointer.y = x, y
                    moved_ms = _number(item, "duration", 0) if "duration" in item else 0
                    pointer.moved_ms += moved_ms
                    pause = max(pause, moved_ms / 1000)
                elif kind == "pointerDown":
                    if any(p.down_at is not None for p in pointers.values() if p is not pointer):
                        raise AppiumError.unsupported(
                            "several pointers down at once (multi-touch)", "use one finger at a time"
                        )
                    pointer.down_at = (pointer.x, pointer.y)
                    pointer.moved_ms = 0.0
                elif kind == "pointerUp":
                    if pointer.down_at is None:
                        continue
                    (x1, y1), pointer.down_at = pointer.down_at, None
                    if math.hypot(pointer.x - x1, pointer.y - y1) <= _TOUCH_SLOP:
                        phone.tap(x1, y1)
                    else:
                        # Its speed decides the fling; moves without a duration give none.
                        phone.swipe(x1, y1, pointer.x, pointer.y, pointer.moved_ms or None)
                elif kind != "pointerCancel":
                    raise AppiumError.invalid_argument(f"unknown pointer action type {kind!r}")
            elif source.get("type") not in ("none", "wheel"):
                raise AppiumError.invalid_argument(f"unknown input source type {source.get('type')!r}")
        if pause > 0:
            await asyncio.sleep(min(pause, _MAX_PAUSE_S))


def _key(device: VirtualDevice, item: dict[str, Any]) -> None:
    kind = item.get("type")
    if kind == "keyUp":
        return
    if kind != "keyDown":
        raise AppiumError.invalid_argument(f"unknown key action type {kind!r}")
    value = item.get("value")
    if not isinstance(value, str) or len(value) != 1:
        raise AppiumError.invalid_argument(f"keyDown needs a 'value' of one character, got {value!r}")
    if value in _SPECIAL_KEYS:
        device.phone.press_key(_SPECIAL_KEYS[value])
    elif not "\ue000" <= value <= "\uf8ff":  # other WebDriver keys (modifiers, arrows) do nothing here
        device.phone.input_text(value)
