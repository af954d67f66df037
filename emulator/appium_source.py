"""The page source of Appium's UiAutomator2 server, written from the virtual device's hierarchy.

Unlike uiautomator's dump (`<node class="...">`), each element is named by its class
(`<android.widget.Button ...>`), under `<hierarchy index="0" class="hierarchy" rotation="R"
width="W" height="H">`; `content-desc` and `resource-id` are left out when empty; booleans are
`true`/`false`; `displayed` says whether the element shows on the screen. The same tree and
bounds as the uiautomator2 server's dump, so both drivers see the same widgets.

For XPath lookups the server numbers every element (`uiElementIndex`, as the real server
does internally) and maps the matches back to their nodes.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import quoteattr

from lxml import etree

from emulator.u2_selectors import Located, SelectorError, visible_bounds
from interpreter.hierarchy import Bounds, UiNode

__all__ = ["find_by_xpath", "page_source", "xml_name"]

_INDEX_ATTR = "uiElementIndex"
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_name(class_name: str) -> str:
    """The element name for a class, as the server makes it (`$`, `@`, `#`, `&` become dots)."""
    name = re.sub(r"\.+", ".", re.sub(r"[$@#&]", ".", class_name)).strip(".")
    name = re.sub(r"[^A-Za-z0-9\-._]", "_", name)
    if not name or not re.match(r"[A-Za-z_]", name):
        return "android.view.View"
    return name


def _value(value: str) -> str:
    return quoteattr(_NOT_XML.sub("?", value))


def _attributes(node: UiNode, index: int, screen: Bounds, order: int) -> list[tuple[str, str]]:
    flags = (
        ("checkable", node.checkable),
        ("checked", node.checked),
        ("clickable", node.clickable),
        ("enabled", node.enabled),
        ("focusable", node.clickable or node.editable),
        ("focused", node.focused),
        ("long-clickable", False),
        ("password", node.password),
        ("scrollable", node.scrollable),
        ("selected", node.selected),
    )
    attrs = [
        ("index", str(index)),
        ("package", node.package),
        ("class", node.class_name),
        ("text", node.text),
    ]
    if node.content_desc:
        attrs.append(("content-desc", node.content_desc))
    if node.resource_id:
        attrs.append(("resource-id", node.resource_id))
    attrs += [(name, str(flag).lower()) for name, flag in flags]
    attrs += [
        ("bounds", node.bounds.to_android()),
        ("displayed", str(visible_bounds(node.bounds, screen) is not None).lower()),
        ("a11y-important", "true"),
        ("screen-reader-focusable", "false"),
    ]
    if node.editable:
        attrs.append(("input-type", "1"))
    attrs += [
        ("drawing-order", str(order)),
        ("showing-hint", "false"),
        ("text-entry-key", "false"),
        ("dismissable", "false"),
        ("a11y-focused", "false"),
        ("heading", "false"),
        ("live-region", "0"),
        ("context-clickable", "false"),
        ("content-invalid", "false"),
    ]
    return attrs


def page_source(
    root: UiNode, width: int, height: int, numbered: bool = False, rotation: int = 0
) -> tuple[str, list[Located]]:
    """The source XML and, in document order, every element written (numbered ones in that order)."""
    screen = Bounds(0, 0, width, height)
    lines = [
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>",
        f'<hierarchy index="0" class="hierarchy" rotation="{rotation}" width="{width}" height="{height}">',
    ]
    elements: list[Located] = []

    def write(node: UiNode, index: int, depth: int) -> None:
        attrs = _attributes(node, index, screen, index + 1)
        if numbered:
            attrs.append((_INDEX_ATTR, str(len(elements))))
        shown = visible_bounds(node.bounds, screen) or Bounds(node.bounds.left, node.bounds.top, 0, 0)
        elements.append(Located(node, index, shown))
        name = xml_name(node.class_name)
        pad = "  " * depth
        head = f"{pad}<{name} " + " ".join(f"{key}={_value(value)}" for key, value in attrs)
        if not node.children:
            lines.append(head + " />")
            return
        lines.append(head + ">")
        for child_index, child in enumerate(node.children):
            write(child, child_index, depth + 1)
        lines.append(f"{pad}</{name}>")

    for index, child in enumerate(root.children):
        write(child, index, 1)
    lines.append("</hierarchy>")
    return "\n".join(lines), elements


def find_by_xpath(root: UiNode, width: int, height: int, xpath: str) -> list[Located]:
    """The elements an XPath 1.0 expression selects in the page source, in document order."""
    source, elements = page_source(root, width, height, numbered=True)
    document = etree.fromstring(source.encode("utf-8"))
    try:
        result = document.xpath(xpath)
    except etree.XPathError as exc:
        raise SelectorError(f"{xpath!r} is not a valid XPath expression: {exc}") from exc
    if not isinstance(result, list):
        raise SelectorError(f"the XPath {xpath!r} selects a value ({result!r}), not elements")
    found: list[Located] = []
    for item in result:
        if isinstance(item, etree._Element) and item.get(_INDEX_ATTR) is not None:
            found.append(elements[int(item.get(_INDEX_ATTR) or 0)])
    return found
