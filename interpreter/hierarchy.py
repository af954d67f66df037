"""The window hierarchy both drivers see: a tree of `UiNode`.

The simulator builds it from the app model's layout; the bridge parses it from the
XML that `uiautomator2.dump_hierarchy()` returns; the emulator writes that XML from
the same tree. The element matcher only ever sees `UiNode`s, so the two drivers
cannot disagree about what a selector means.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field

from interpreter.errors import DeviceError

SCREEN_WIDTH = 1080
SCREEN_HEIGHT = 2340


@dataclass(frozen=True, slots=True)
class Bounds:
    left: int
    top: int
    right: int
    bottom: int

    @property
    def center(self) -> tuple[int, int]:
        return ((self.left + self.right) // 2, (self.top + self.bottom) // 2)

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def contains(self, x: float, y: float) -> bool:
        return self.left <= x < self.right and self.top <= y < self.bottom

    def on_screen(self, width: int = SCREEN_WIDTH, height: int = SCREEN_HEIGHT) -> bool:
        """Whole-widget visibility: the bounds lie on the screen and are not empty."""
        return (
            self.left >= 0
            and self.top >= 0
            and self.right <= width
            and self.bottom <= height
            and self.right > self.left
            and self.bottom > self.top
        )

    def to_android(self) -> str:
        return f"[{self.left},{self.top}][{self.right},{self.bottom}]"

    @classmethod
    def parse_android(cls, text: str) -> Bounds:
        """Parse `[l,t][r,b]` as uiautomator writes it."""
        parts = text.replace("][", ",").strip("[]").split(",")
        if len(parts) != 4:
            raise ValueError(f"bounds {text!r} are not of the form [l,t][r,b]")
        left, top, right, bottom = (int(p) for p in parts)
        return cls(left, top, right, bottom)


@dataclass(slots=True)
class UiNode:
    """One widget as uiautomator reports it."""

    class_name: str
    bounds: Bounds
    text: str = ""
    resource_id: str = ""
    content_desc: str = ""
    package: str = ""
    clickable: bool = False
    editable: bool = False
    scrollable: bool = False
    enabled: bool = True
    focused: bool = False
    checkable: bool = False
    checked: bool = False
    password: bool = False
    selected: bool = False
    children: list[UiNode] = field(default_factory=list)

    def walk(self) -> Iterator[UiNode]:
        """This node and every descendant, in document (pre-)order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


_BOOL_ATTRS = (
    ("checkable", "checkable"),
    ("checked", "checked"),
    ("clickable", "clickable"),
    ("enabled", "enabled"),
    ("focusable", None),
    ("focused", "focused"),
    ("scrollable", "scrollable"),
    ("long-clickable", None),
    ("password", "password"),
    ("selected", "selected"),
)


def _truth(value: str | None) -> bool:
    return value == "true"


def _is_node(el: ET.Element) -> bool:
    """A widget: `<node class=...>` in uiautomator's dump, `<android.widget.X class=...>` in Appium's."""
    return el.tag == "node" or "class" in el.attrib


class HierarchyError(DeviceError):
    """The window hierarchy a device sent cannot be read (not XML, or widgets without usable bounds)."""


# XML 1.0 forbids these characters, raw or as character references; phones put them in on-screen
# text all the same (a control character in a label, half a surrogate pair from a cut string).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CHAR_REF = re.compile(r"&#(x[0-9a-fA-F]+|[0-9]+);")
# Each forbidden character is carried through the XML parser as this private-use character and
# four hex digits (the character itself too, so that a genuine one comes back unchanged).
_MARK = "\ue000"
_MARKED = re.compile(_MARK + "([0-9a-f]{4})")


def _forbidden(code: int) -> bool:
    return code < 0x110000 and _FORBIDDEN.match(chr(code)) is not None


def _mark(code: int) -> str:
    return f"{_MARK}{code:04x}"


def _escape_forbidden(text: str) -> str | None:
    """`text` with every forbidden character (raw or referenced) marked, or None when it has none."""
    has_raw = _MARK in text or _FORBIDDEN.search(text) is not None
    has_refs = "&#" in text and any(_forbidden(_ref_code(m)) for m in _CHAR_REF.finditer(text))
    if not has_raw and not has_refs:
        return None
    text = text.replace(_MARK, _mark(ord(_MARK)))
    text = _FORBIDDEN.sub(lambda m: _mark(ord(m.group())), text)
    return _CHAR_REF.sub(lambda m: _mark(code) if _forbidden(code := _ref_code(m)) else m.group(), text)


def _ref_code(match: re.Match[str]) -> int:
    digits = match.group(1)
    return int(digits[1:], 16) if digits[0] == "x" else int(digits)


def _unmark(value: str) -> str:
    return _MARKED.sub(lambda m: chr(int(m.group(1), 16)), value) if _MARK in value else value


def from_android_xml(xml_text: str | bytes) -> UiNode:
    """Parse a window hierarchy into a `UiNode` tree under a synthetic root.

    Both shapes phones give are read: uiautomator's dump (`<node class="...">`) and the page
    source of Appium's UiAutomator2 server (each element named by its class). The root is a
    `hierarchy` node covering the whole screen; its children are the top-level windows.

    Characters XML 1.0 forbids (control characters, lone surrogates, U+FFFE/U+FFFF), raw or
    as character references, are read as the phone meant them: they reach the widgets' text
    unchanged, as the simulator's model has them. A dump that is not XML at all, or a widget
    whose bounds cannot be read, raises `HierarchyError` saying what came instead.
    """
    text = xml_text.decode("utf-8", errors="replace") if isinstance(xml_text, bytes) else str(xml_text)
    marked = _escape_forbidden(text)
    try:
        root_el = ET.fromstring((text if marked is None else marked).encode("utf-8"))
        if marked is not None:
            for el in root_el.iter():
                for name, value in el.attrib.items():
                    if _MARK in value:
                        el.attrib[name] = _unmark(value)
        root = UiNode(class_name="hierarchy", bounds=Bounds(0, 0, SCREEN_WIDTH, SCREEN_HEIGHT))
        root.children = [_node_from_element(el) for el in root_el if _is_node(el)]
    except ET.ParseError as exc:
        raise HierarchyError(
            f"the window hierarchy the phone sent is not XML ({exc}); it begins {text[:80]!r}. The phone "
            "may be busy or its automation service broken: try again, and restart the phone's "
            "automation (or the phone) if it goes on"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise HierarchyError(
            f"the window hierarchy the phone sent has a widget that cannot be read ({exc}): "
            "try again, and restart the phone's automation (or the phone) if it goes on"
        ) from None
    return root


def _node_from_element(el: ET.Element) -> UiNode:
    bounds_text = el.get("bounds") or "[0,0][0,0]"
    class_name = el.get("class", "")
    node = UiNode(
        class_name=class_name,
        bounds=Bounds.parse_android(bounds_text),
        text=el.get("text", ""),
        resource_id=el.get("resource-id", ""),
        content_desc=el.get("content-desc", ""),
        package=el.get("package", ""),
        clickable=_truth(el.get("clickable")),
        editable=class_name.endswith("EditText"),
        scrollable=_truth(el.get("scrollable")),
        enabled=el.get("enabled", "true") == "true",
        focused=_truth(el.get("focused")),
        checkable=_truth(el.get("checkable")),
        checked=_truth(el.get("checked")),
        password=_truth(el.get("password")),
        selected=_truth(el.get("selected")),
    )
    node.children = [_node_from_element(child) for child in el if _is_node(child)]
    return node


def to_android_xml(root: UiNode, rotation: int = 0) -> str:
    """Write the tree as uiautomator's `dumpWindowHierarchy` does (the root itself is not written)."""
    lines = ["<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>", f'<hierarchy rotation="{rotation}">']
    for index, child in enumerate(root.children):
        _write_node(child, index, 1, lines)
    lines.append("</hierarchy>")
    return "\r\n".join(lines)


def _esc(value: str) -> str:
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )


def _write_node(node: UiNode, index: int, depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    flags = {
        "checkable": node.checkable,
        "checked": node.checked,
        "clickable": node.clickable,
        "enabled": node.enabled,
        "focusable": node.clickable or node.editable,
        "focused": node.focused,
        "scrollable": node.scrollable,
        "long-clickable": False,
        "password": node.password,
        "selected": node.selected,
    }
    attrs = [
        f'index="{index}"',
        f'text="{_esc(node.text)}"',
        f'resource-id="{_esc(node.resource_id)}"',
        f'class="{_esc(node.class_name)}"',
        f'package="{_esc(node.package)}"',
        f'content-desc="{_esc(node.content_desc)}"',
    ]
    attrs += [f'{name}="{str(flags[name]).lower()}"' for name, _ in _BOOL_ATTRS]
    attrs += [
        'visible-to-user="true"',
        f'bounds="{node.bounds.to_android()}"',
        f'drawing-order="{index + 1}"',
    ]
    attrs += ['hint=""', 'display-id="0"']
    head = f"{pad}<node {' '.join(attrs)}"
    if not node.children:
        lines.append(head + " />")
        return
    lines.append(head + ">")
    for child_index, child in enumerate(node.children):
        _write_node(child, child_index, depth + 1, lines)
    lines.append(f"{pad}</node>")
