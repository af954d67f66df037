"""The uiautomator2 methods about UI objects: finding them by selector, reading, typing, scrolling.

`PhoneMethods` holds what every method needs (the device's phone, finding a node, tapping,
swiping); `ObjectMethods` adds the selector-based methods (`exist`, `waitForExists`, `objInfo`,
`setText`, `scrollTo`, ...). `emulator.u2_rpc.U2Rpc` builds on both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Protocol

from emulator.faults import Faults
from emulator.u2_params import NOT_FOUND, Params, RpcError
from emulator.u2_selectors import Located, U2Selector, locate, locate_all
from interpreter.appmodel import PhoneState
from interpreter.hierarchy import Bounds, UiNode

__all__ = ["ObjectMethods", "PhoneMethods", "U2Host"]

_POLL_S = 0.05
STEP_MS = 5  # uiautomator throttles each step of a swipe to 5 ms


class U2Host(Protocol):
    """What the server needs from the virtual device (H4a's `VirtualDevice` has these)."""

    @property
    def phone(self) -> PhoneState: ...

    @property
    def props(self) -> Mapping[str, str]: ...

    @property
    def faults(self) -> Faults: ...

    screen_on: bool

    def press_key(self, name: str) -> None: ...


class PhoneMethods:
    """The device's phone and the mechanics every method shares."""

    def __init__(self, device: U2Host) -> None:
        self._device = device

    @property
    def phone(self) -> PhoneState:
        return self._device.phone

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

    async def _swipe(self, fx: float, fy: float, tx: float, ty: float, steps: int, wait: bool = True) -> None:
        """uiautomator's swipe: `steps` moves of 5 ms each, so it takes steps × 5 ms (`wait`), and the
        list flings by that speed (`interpreter.appmodel.gestures`)."""
        duration_ms = max(steps, 1) * STEP_MS
        if wait:
            await asyncio.sleep(duration_ms / 1000)
        self.phone.swipe(fx, fy, tx, ty, duration_ms)


class ObjectMethods(PhoneMethods):
    """Methods that take a selector (`[selector, ...]`)."""

    async def rpc_exist(self, p: Params) -> bool:
        return self._find(p.selector(0)) is not None

    async def rpc_waitForExists(self, p: Params) -> bool:
        return await self._wait_for(p.selector(0), p.integer(1, "timeout", 0), present=True)

    async def rpc_waitUntilGone(self, p: Params) -> bool:
        return await self._wait_for(p.selector(0), p.integer(1, "timeout", 0), present=False)

    async def rpc_count(self, p: Params) -> int:
        selector = p.selector(0)
        if selector.links[0].instance_set:  # as AutomatorServiceImpl.count: that one instance or none
            return 1 if self._find(selector) is not None else 0
        width, height = self._size()
        return len(locate_all(self.phone.hierarchy(), selector, width, height))

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
        await self._swipe(*swipe_within(found.visible, direction, p), steps)
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

    # --- two fingers ---------------------------------------------------------------------

    async def _pinch(self, p: Params) -> bool:
        """UiObject.pinchIn/pinchOut(percent, steps): two fingers meet or part inside the object for
        steps × 5 ms. No widget of the app model zooms, and a list does not scroll under a pinch (its
        fingers' centre stays put), so the screen stays as it was, as such screens do on a phone."""
        self._must_find(p.selector(0))
        percent = p.integer(1, "percent", 100)
        if not 0 <= percent <= 100:
            raise RpcError(
                -32001, "java.lang.IllegalStateException", "Percent must be between 0 and 100"
            )  # as UiObject.pinchIn/pinchOut check it
        await asyncio.sleep(max(p.integer(2, "steps", 50), 1) * STEP_MS / 1000)
        return True

    async def rpc_gesture(self, p: Params) -> bool:
        """UiObject.performTwoPointerGesture(start1, start2, end1, end2, steps): a list under the two
        fingers scrolls by the motion of their centre (fingers moving together drag it; a pinch, whose
        centre stays put, does not)."""
        self._must_find(p.selector(0))
        (sx1, sy1), (sx2, sy2) = p.point(1, "startPoint1"), p.point(2, "startPoint2")
        (ex1, ey1), (ex2, ey2) = p.point(3, "endPoint1"), p.point(4, "endPoint2")
        steps = p.integer(5, "steps", 50)
        await self._swipe((sx1 + sx2) / 2, (sy1 + sy2) / 2, (ex1 + ex2) / 2, (ey1 + ey2) / 2, steps)
        return True

    rpc_pinchIn = rpc_pinchOut = _pinch

    # --- what the emulator does not model --------------------------------------------------

    async def _no_handles(self, p: Params) -> Any:
        raise RpcError(
            -32001,
            "java.lang.UnsupportedOperationException",
            f"{p.method} is not supported by the phoneflow emulator: it returns a handle to an object kept "
            "in the server, which this server does not keep; use d(...).child(text=...) or "
            "d(...).sibling(...) selectors, or d.xpath(...)",
        )

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


def swipe_within(bounds: Bounds, direction: str, p: Params) -> tuple[int, int, int, int]:
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


def _fingerprint(root: UiNode) -> tuple[tuple[str, str, Bounds], ...]:
    return tuple((n.text, n.resource_id, n.bounds) for n in root.walk())
