"""The window hierarchy both drivers see: a tree of `UiNode`.

The simulator builds it from the app model's layout; the bridge parses it from the
XML that `uiautomator2.dump_hierarchy()` returns; the emulator writes that XML from
the same tree. The element matcher only ever sees `UiNode`s, so the two drivers
cannot disagree about what a selector means.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

from interpreter.errors import DeviceError

SCREEN_WIDTH = 1080
SCREEN_HEIGHT = 2340
_BOUNDS = re.compile(r"\[(-?\d+),(-?\d+)\]\[(-?\d+),(-?\d+)\]")


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
        plain = _BOUNDS.fullmatch(text)
        if plain is not None:  # the form every phone writes, read at once
            return cls(*map(int, plain.groups()))
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


# The bytes of UTF-8 text that cannot begin anything `_escape_forbidden` looks for: all but the C0
# controls XML forbids, `&` (a character reference), and the lead bytes of U+E000 and U+FFFE/U+FFFF.
_ORDINARY_BYTES = bytes(
    b for b in range(256) if not (b < 0x20 and b not in b"\t\n\r") and b not in b"&\xee\xef"
)


def _may_need_escaping(data: bytes) -> bool:
    """Whether the UTF-8 `data` may hold what `_escape_forbidden` marks: a quick look (C speed) that is
    never wrong when it says no, so most dumps skip the character-by-character search."""
    rest = data.translate(None, _ORDINARY_BYTES)
    if not rest:
        return False
    if rest.translate(None, b"&\xee\xef"):
        return True  # a control character
    return (
        (b"&" in rest and b"&#" in data)
        or b"\xef\xbf\xbe" in data
        or b"\xef\xbf\xbf" in data
        or b"\xee\x80\x80" in data
    )


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


# The deepest a hierarchy may nest (a phone's screens nest a few dozen levels). Walking a tree costs
# more the deeper it is: 50,000 levels (2 MB of XML) took the inspector 38 s.
MAX_DEPTH = 512


class _TooDeep(Exception):
    """Raised out of the parser's callback when the hierarchy nests deeper than MAX_DEPTH."""


def from_android_xml(xml_text: str | bytes) -> UiNode:
    """Parse a window hierarchy into a `UiNode` tree under a synthetic root.

    Both shapes phones give are read: uiautomator's dump (`<node class="...">`) and the page
    source of Appium's UiAutomator2 server (each element named by its class). The root is a
    `hierarchy` node covering the whole screen; its children are the top-level windows. An element
    that is not a widget (neither `node` nor with a `class`) is left out with all it holds.

    Characters XML 1.0 forbids (control characters, lone surrogates, U+FFFE/U+FFFF), raw or
    as character references, are read as the phone meant them: they reach the widgets' text
    unchanged, as the simulator's model has them. A dump that is not XML at all, or a widget
    whose bounds cannot be read, raises `HierarchyError` saying what came instead.

    The widgets are built as the XML parser meets them (expat's element callbacks): a phone's
    screen is read at every step, and a tree of elements built first and walked after cost twice.
    """
    text = xml_text.decode("utf-8", errors="replace") if isinstance(xml_text, bytes) else str(xml_text)
    try:
        data: bytes | None = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: marked below
        data = None
    marked = _escape_forbidden(text) if data is None or _may_need_escaping(data) else None
    if marked is not None:
        data = marked.encode("utf-8")
    assert data is not None
    root = UiNode(class_name="hierarchy", bounds=Bounds(0, 0, SCREEN_WIDTH, SCREEN_HEIGHT))
    # Where each open element's widgets go: the root's list for the document element, a widget's
    # children for a widget, None inside an element that is not a widget (its content is left out).
    open_lists: list[list[UiNode] | None] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        if not open_lists:
            open_lists.append(root.children)
            return
        if len(open_lists) > MAX_DEPTH:
            raise _TooDeep
        siblings = open_lists[-1]
        if siblings is None or not (tag == "node" or "class" in attrs):
            open_lists.append(None)
            return
        node = _node_from_attributes(attrs if marked is None else _unmarked(attrs))
        siblings.append(node)
        open_lists.append(node.children)

    def end(_tag: str) -> None:
        open_lists.pop()

    # As xml.etree's parser sets expat up (namespaces resolved), so the same dumps are refused.
    parser = expat.ParserCreate(None, "}")
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except _TooDeep:
        raise HierarchyError(
            f"the window hierarchy nests elements more than {MAX_DEPTH} deep, which no phone's screen does; "
            "send the XML uiautomator or Appium dumps"
        ) from None
    except expat.ExpatError as exc:
        raise HierarchyError(
            f"the window hierarchy the phone sent is not XML ({exc}); it begins {text[:80]!r}. The phone "
            "may be busy or its automation service broken: try again, and restart the phone's "
            "automation (or the phone) if it goes on"
        ) from None
    except ValueError as exc:
        raise HierarchyError(
            f"the window hierarchy the phone sent has a widget that cannot be read ({exc}): "
            "try again, and restart the phone's automation (or the phone) if it goes on"
        ) from None
    return root


def _unmarked(attrs: dict[str, str]) -> dict[str, str]:
    return {name: _unmark(value) for name, value in attrs.items()}


# Bounds read from dumps, by their text: one dump repeats most of the last one's (the same screen a
# moment later, or the same app), and a `Bounds` is never changed, so one is shared. Emptied when full.
_BOUNDS_READ: dict[str, Bounds] = {}
_BOUNDS_READ_MAX = 4096


def _bounds(text: str) -> Bounds:
    bounds = _BOUNDS_READ.get(text)
    if bounds is None:
        bounds = Bounds.parse_android(text)
        if len(_BOUNDS_READ) >= _BOUNDS_READ_MAX:
            _BOUNDS_READ.clear()
        _BOUNDS_READ[text] = bounds
    return bounds


def _node_from_attributes(attrs: dict[str, Any]) -> UiNode:
    get = attrs.get
    class_name = get("class", "")
    # Positional, in UiNode's field order: a screen of a few hundred widgets is read at every step.
    return UiNode(
        class_name,
        _bounds(get("bounds") or "[0,0][0,0]"),
        get("text", ""),
        get("resource-id", ""),
        get("content-desc", ""),
        get("package", ""),
        get("clickable") == "true",
        class_name.endswith("EditText"),
        get("scrollable") == "true",
        get("enabled", "true") == "true",
        get("focused") == "true",
        get("checkable") == "true",
        get("checked") == "true",
        get("password") == "true",
        get("selected") == "true",
        [],
    )


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
