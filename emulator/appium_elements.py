"""Elements in the Appium UiAutomator2 server: finding them, and what can be done to one.

Locator strategies are the real server's: `id` (a bare id gets the foreground app's
`package:id/` prefix), `accessibility id` (content-desc), `class name`, `xpath` (XPath 1.0 over
the page source) and `-android uiautomator` (a UiSelector expression, or a UiScrollable one that
scrolls until its target shows). Except for XPath, only elements that show on the screen are
found, as uiautomator sees only what is visible.

A found element is remembered with its locator; later commands use the node of the current
screen at the same place (same class, resource-id and bounds), else the locator's match of the
same rank, else they fail with `stale element reference`, as the real server's cache does.
"""

from __future__ import annotations

import base64
import io
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator.appium_server import ELEMENT_KEY, LEGACY_ELEMENT_KEY, AppiumError, Handler, Request, Session
from emulator.appium_source import find_by_xpath
from emulator.appium_uiselector import ScrollIntoView, parse_uiautomator
from emulator.u2_selectors import Located, SelectorError, locate, locate_all, walk_visible
from interpreter.appmodel import screen
from interpreter.hierarchy import Bounds, UiNode

if TYPE_CHECKING:
    from emulator.device import VirtualDevice

__all__ = ["Element", "element_id", "element_routes", "find", "remember", "resolve", "set_text"]

STRATEGIES = ("id", "xpath", "accessibility id", "class name", "-android uiautomator")
_MAX_SCROLLS = 30  # UiScrollable's default number of swipes
_SCROLL_SWIPE_MS = 55 * 5  # its swipes: 55 steps of 5 ms


@dataclass
class Element:
    id: str
    strategy: str
    selector: str
    rank: int
    node: UiNode
    visible: Bounds


def element_id(value: Any) -> str | None:
    """The id of an element reference (`{"element-6066-…": id}` or `{"ELEMENT": id}`), else None."""
    if isinstance(value, dict):
        found = value.get(ELEMENT_KEY) or value.get(LEGACY_ELEMENT_KEY)
        return str(found) if found else None
    return None


def _size(device: VirtualDevice) -> tuple[int, int]:
    return device.phone.width, device.phone.height


def find(
    device: VirtualDevice, strategy: str, selector: str, context: Located | None = None
) -> list[Located]:
    """Every element `strategy`/`selector` designates now, in document order (under `context` if given)."""
    phone = device.phone
    width, height = _size(device)
    root = phone.hierarchy()
    if context is not None:
        root = UiNode("hierarchy", Bounds(0, 0, width, height), children=[context.node])
    if strategy not in STRATEGIES:
        raise AppiumError.invalid_selector(
            f"Selector strategy '{strategy}' is not supported. Only the following selector strategies are "
            f"supported: {list(STRATEGIES)}"
        )
    try:
        if strategy == "xpath":
            found = find_by_xpath(root, width, height, selector)
            return [f for f in found if context is None or f.node is not context.node]
        if strategy == "-android uiautomator":
            parsed = parse_uiautomator(selector)
            if isinstance(parsed, ScrollIntoView):
                return _scroll_into_view(device, parsed)
            return locate_all(root, parsed, width, height)
    except SelectorError as exc:
        raise AppiumError.invalid_selector(str(exc)) from exc
    if strategy == "id":
        wanted = selector if ":" in selector else f"{phone.foreground_package()}:id/{selector}"
        attribute = "resource_id"
    else:
        wanted = selector
        attribute = "content_desc" if strategy == "accessibility id" else "class_name"
    return [
        found
        for found in walk_visible(root, width, height)
        if getattr(found.node, attribute) == wanted and (context is None or found.node is not context.node)
    ]


def _scroll_into_view(device: VirtualDevice, scroll: ScrollIntoView) -> list[Located]:
    """UiScrollable.scrollIntoView: swipe the container (forward, then back) until the target shows."""
    phone = device.phone
    width, height = _size(device)
    for forward in (True, False):
        for _ in range(_MAX_SCROLLS):
            target = locate(phone.hierarchy(), scroll.target, width, height)
            if target is not None:
                return [target]
            container = locate(phone.hierarchy(), scroll.scrollable, width, height)
            if container is None:
                return []
            before = phone.hierarchy()
            cx, cy = container.visible.center
            dx, dy = container.visible.width * 2 // 5, container.visible.height * 2 // 5
            sign = 1 if forward else -1
            # UiScrollable swipes in 55 steps of 5 ms.
            if scroll.vertical:
                phone.swipe(cx, cy + sign * dy, cx, cy - sign * dy, _SCROLL_SWIPE_MS)
            else:
                phone.swipe(cx + sign * dx, cy, cx - sign * dx, cy, _SCROLL_SWIPE_MS)
            if phone.hierarchy() is before:  # nothing moved: the end of the list
                break
    target = locate(phone.hierarchy(), scroll.target, width, height)
    return [target] if target is not None else []


def remember(session: Session, strategy: str, selector: str, rank: int, found: Located) -> dict[str, str]:
    element = Element(str(uuid.uuid4()), strategy, selector, rank, found.node, found.visible)
    session.elements[element.id] = element
    return {ELEMENT_KEY: element.id, LEGACY_ELEMENT_KEY: element.id}


def resolve(device: VirtualDevice, session: Session, ident: str) -> Located:
    """The element's node on the current screen (see the module docstring). Raises `AppiumError`."""
    element = session.elements.get(ident)
    if not isinstance(element, Element):
        raise AppiumError(
            "no such element", f"The element identified by '{ident}' is not present in the cache", 404
        )
    width, height = _size(device)
    for found in walk_visible(device.phone.hierarchy(), width, height):
        node = found.node
        if (node.class_name, node.resource_id, node.bounds) == (
            element.node.class_name,
            element.node.resource_id,
            element.node.bounds,
        ):
            return found
    if element.strategy != "active":
        matches = find(device, element.strategy, element.selector)
        if element.rank < len(matches):
            return matches[element.rank]
    raise AppiumError(
        "stale element reference",
        f"The element '{element.selector}' (found by {element.strategy}) is not on the current screen",
        404,
    )


def element_routes(device: VirtualDevice) -> list[tuple[str, str, Handler]]:
    def target(request: Request) -> Located:
        return resolve(device, request.current, request.params["id"])

    def context_of(request: Request) -> Located | None:
        context = request.body.get("context")
        return resolve(device, request.current, str(context)) if context else None

    async def find_one(request: Request) -> Any:
        strategy, selector = request.require("strategy", str), request.require("selector", str)
        found = find(device, strategy, selector, context_of(request))
        if not found:
            raise AppiumError.no_such_element()
        return remember(request.current, strategy, selector, 0, found[0])

    async def find_many(request: Request) -> Any:
        strategy, selector = request.require("strategy", str), request.require("selector", str)
        found = find(device, strategy, selector, context_of(request))
        return [remember(request.current, strategy, selector, rank, f) for rank, f in enumerate(found)]

    async def active(request: Request) -> Any:
        width, height = _size(device)
        for found in walk_visible(device.phone.hierarchy(), width, height):
            if found.node.focused:
                return remember(request.current, "active", "focused element", 0, found)
        raise AppiumError.no_such_element("There is no focused element on the screen")

    async def click(request: Request) -> Any:
        x, y = target(request).visible.center
        device.phone.tap(x, y)

    async def clear(request: Request) -> Any:
        found = target(request)
        if found.node.editable:
            device.phone.set_focus(found.node.bounds)
            device.phone.clear_text()

    async def send_keys(request: Request) -> Any:
        found = target(request)
        text = request.body.get("text")
        if not isinstance(text, str):
            value = request.body.get("value")
            text = "".join(value) if isinstance(value, list) else None
        if text is None:
            raise AppiumError.invalid_argument("'text' is mandatory for this request")
        set_text(device, found, text, bool(request.body.get("replace")))

    async def text(request: Request) -> Any:
        return target(request).node.text

    async def name(request: Request) -> Any:
        node = target(request).node
        return node.content_desc or node.text

    async def attribute(request: Request) -> Any:
        return attribute_of(target(request), request.params["name"])

    async def rect(request: Request) -> Any:
        bounds = target(request).visible
        return {"x": bounds.left, "y": bounds.top, "width": bounds.width, "height": bounds.height}

    async def location(request: Request) -> Any:
        bounds = target(request).visible
        return {"x": bounds.left, "y": bounds.top}

    async def size(request: Request) -> Any:
        bounds = target(request).visible
        return {"width": bounds.width, "height": bounds.height}

    async def element_screenshot(request: Request) -> Any:
        bounds = target(request).visible
        image = screen.render_image(device.phone).crop((bounds.left, bounds.top, bounds.right, bounds.bottom))
        out = io.BytesIO()
        image.save(out, "PNG")
        return base64.b64encode(out.getvalue()).decode()

    base = "/session/:sessionId"
    return [
        ("POST", f"{base}/element", find_one),
        ("POST", f"{base}/elements", find_many),
        ("GET", f"{base}/element/active", active),
        ("POST", f"{base}/element/:id/click", click),
        ("POST", f"{base}/element/:id/clear", clear),
        ("POST", f"{base}/element/:id/value", send_keys),
        ("GET", f"{base}/element/:id/text", text),
        ("GET", f"{base}/element/:id/name", name),
        ("GET", f"{base}/element/:id/attribute/:name", attribute),
        ("GET", f"{base}/element/:id/rect", rect),
        ("GET", f"{base}/element/:id/location", location),
        ("GET", f"{base}/element/:id/size", size),
        ("GET", f"{base}/element/:id/screenshot", element_screenshot),
        ("GET", f"{base}/screenshot/:id", element_screenshot),
    ]


def set_text(device: VirtualDevice, found: Located, text: str, replace: bool) -> None:
    """What SendKeysToElement does: set (or append to) an editable's text; a trailing `\\n` presses Enter."""
    if not found.node.editable:
        raise AppiumError.invalid_state(
            f"Cannot set the element to '{text}'. Did you interact with the correct element?"
        )
    phone = device.phone
    if text.endswith("\\n"):
        text = text[:-2]
    phone.set_focus(found.node.bounds)
    if replace:
        phone.clear_text()
    phone.input_text(text)


def attribute_of(found: Located, name: str) -> str | None:
    node = found.node
    flags = {
        "checkable": node.checkable,
        "checked": node.checked,
        "clickable": node.clickable,
        "enabled": node.enabled,
        "focusable": node.clickable or node.editable,
        "focused": node.focused,
        "long-clickable": False,
        "longClickable": False,
        "password": node.password,
        "scrollable": node.scrollable,
        "selected": node.selected,
        "displayed": found.visible.width > 0 and found.visible.height > 0,
    }
    if name in flags:
        return str(flags[name]).lower()
    values = {
        "text": node.text,
        "name": node.content_desc or node.text,
        "content-desc": node.content_desc or None,
        "contentDescription": node.content_desc or None,
        "resource-id": node.resource_id or None,
        "resourceId": node.resource_id or None,
        "class": node.class_name,
        "className": node.class_name,
        "package": node.package,
        "bounds": node.bounds.to_android(),
        "index": str(found.index),
        "hint": None,
    }
    if name not in values:
        raise AppiumError(
            "unknown command",
            f"'{name}' attribute is unknown for the element; known: {sorted(values | flags)}",
            404,
        )
    return values[name]
