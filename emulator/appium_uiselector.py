"""Appium's `-android uiautomator` locator: a `UiSelector` expression in Java syntax.

    new UiSelector().text("OK").className("android.widget.Button")
    new UiSelector().resourceId("com.x:id/list").childSelector(new UiSelector().index(2))
    new UiScrollable(new UiSelector().scrollable(true)).scrollIntoView(new UiSelector().text("Item 40"))

The expression is parsed (string, boolean and integer literals; chained calls; nested
`new UiSelector()`) into the selector dict uiautomator2 sends over JSON-RPC, so both in-device
servers match with the same `emulator.u2_selectors` code and the same UiSelector semantics. A
`UiScrollable` expression is parsed into the scrollable's selector and what to scroll to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from emulator.u2_selectors import SelectorError, U2Selector

__all__ = ["ScrollIntoView", "parse_uiautomator"]

# UiSelector methods → (selector dict field, mask bit, argument kind).
_METHODS: dict[str, tuple[int, type]] = {
    "text": (0x01, str),
    "textContains": (0x02, str),
    "textMatches": (0x04, str),
    "textStartsWith": (0x08, str),
    "className": (0x10, str),
    "classNameMatches": (0x20, str),
    "description": (0x40, str),
    "descriptionContains": (0x80, str),
    "descriptionMatches": (0x100, str),
    "descriptionStartsWith": (0x200, str),
    "checkable": (0x400, bool),
    "checked": (0x800, bool),
    "clickable": (0x1000, bool),
    "longClickable": (0x2000, bool),
    "scrollable": (0x4000, bool),
    "enabled": (0x8000, bool),
    "focusable": (0x10000, bool),
    "focused": (0x20000, bool),
    "selected": (0x40000, bool),
    "packageName": (0x80000, str),
    "packageNameMatches": (0x100000, str),
    "resourceId": (0x200000, str),
    "resourceIdMatches": (0x400000, str),
    "index": (0x800000, int),
    "instance": (0x1000000, int),
}
_RELATIONS = {"childSelector": "child", "fromParent": "sibling"}

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<number>-?\d+)
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    | (?P<punct>[().;,])
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class ScrollIntoView:
    """`new UiScrollable(SCROLLABLE).scrollIntoView(TARGET)` (also `scrollTextIntoView("text")`)."""

    scrollable: U2Selector
    target: U2Selector
    vertical: bool = True


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise SelectorError(f"cannot read the UiSelector expression at {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        token_kind, token = self.peek()
        if (value is not None and token != value) or (kind is not None and token_kind != kind):
            wanted = value or kind
            raise SelectorError(
                f"expected {wanted} in the UiSelector expression {self.text!r}, found {token!r}"
            )
        self.pos += 1
        return token

    def literal(self) -> Any:
        kind, token = self.peek()
        self.pos += 1
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", token[1:-1])
        if kind == "number":
            return int(token)
        if token in ("true", "false"):
            return token == "true"
        if token in ("new", "UiSelector", ".") or token in _METHODS or token in _RELATIONS:
            self.pos -= 1  # a UiSelector argument, written in full or shortened as at the top
            return self.selector()
        raise SelectorError(f"expected a literal in the UiSelector expression {self.text!r}, found {token!r}")

    def call_args(self) -> list[Any]:
        self.take("(")
        args: list[Any] = []
        while self.peek()[1] != ")":
            args.append(self.literal())
            if self.peek()[1] == ",":
                self.take(",")
        self.take(")")
        return args

    def selector(self) -> dict[str, Any]:
        """`[new UiSelector()] (.method(arg))*` as a uiautomator2 selector dict. As Appium's parser, it
        takes `UiSelector()` without `new`, and no constructor at all (`text("OK")`, `.text("OK")`)."""
        bare = False
        if self.peek()[1] == "new":
            self.take("new")
            self.take("UiSelector")
            self.call_args()
        elif self.peek()[1] == "UiSelector":  # `UiSelector().text(...)` without `new`
            self.take("UiSelector")
            self.call_args()
        else:
            bare = self.peek()[0] == "word"  # `text("OK")...`: the server puts `new UiSelector().` in front
        raw: dict[str, Any] = {"mask": 0, "childOrSibling": [], "childOrSiblingSelector": []}
        while bare or (self.peek()[1] == "." and self.pos + 1 < len(self.tokens)):
            name = self.peek()[1] if bare else self.tokens[self.pos + 1][1]
            if name not in _METHODS and name not in _RELATIONS:
                break
            if not bare:
                self.take(".")
            bare = False
            self.take(kind="word")
            args = self.call_args()
            if len(args) != 1:
                raise SelectorError(f"UiSelector.{name}() takes one argument, got {len(args)}")
            if name in _RELATIONS:
                if not isinstance(args[0], dict):
                    raise SelectorError(f"UiSelector.{name}() takes a UiSelector")
                raw["childOrSibling"].append(_RELATIONS[name])
                raw["childOrSiblingSelector"].append(args[0])
                continue
            bit, kind = _METHODS[name]
            value = args[0]
            if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise SelectorError(f"UiSelector.{name}() takes an integer, got {value!r}")
            if kind is not int and not isinstance(value, kind):
                raise SelectorError(f"UiSelector.{name}() takes a {kind.__name__}, got {value!r}")
            raw["mask"] |= bit
            raw[name] = value
        return raw


def parse_uiautomator(expression: str) -> U2Selector | ScrollIntoView:
    """Parse a `-android uiautomator` locator. Raises `SelectorError` saying what is wrong."""
    parser = _Parser(expression.strip().rstrip(";"))
    if parser.peek()[1] == "UiScrollable" or (
        parser.peek()[1] == "new" and parser.tokens[1:2] == [("word", "UiScrollable")]
    ):
        return _scrollable(parser)
    raw = parser.selector()
    if parser.peek()[0] != "end":
        raise SelectorError(
            f"unsupported UiSelector method or trailing text at {parser.peek()[1]!r} in {expression!r}"
        )
    return _nested(raw)


def _nested(raw: dict[str, Any]) -> U2Selector:
    # A child selector's own children are flattened into the chain, as UiSelector does.
    relations, subs = list(raw["childOrSibling"]), list(raw["childOrSiblingSelector"])
    flat_relations: list[str] = []
    flat_subs: list[dict[str, Any]] = []
    for relation, sub in zip(relations, subs, strict=True):
        flat_relations.append(relation)
        flat_subs.append({**sub, "childOrSibling": [], "childOrSiblingSelector": []})
        flat_relations.extend(sub["childOrSibling"])
        flat_subs.extend(sub["childOrSiblingSelector"])
    return U2Selector.parse({**raw, "childOrSibling": flat_relations, "childOrSiblingSelector": flat_subs})


def _scrollable(parser: _Parser) -> ScrollIntoView:
    if parser.peek()[1] == "new":  # `UiScrollable(...)` without `new` is taken too, as Appium does
        parser.take("new")
    parser.take("UiScrollable")
    args = parser.call_args()
    if len(args) != 1 or not isinstance(args[0], dict):
        raise SelectorError("new UiScrollable(...) takes one UiSelector (the container to scroll)")
    scrollable = _nested(args[0])
    vertical = True
    while parser.peek()[1] == ".":
        parser.take(".")
        method = parser.take(kind="word")
        call = parser.call_args()
        if method == "setAsHorizontalList":
            vertical = False
        elif method == "setAsVerticalList":
            vertical = True
        elif method in ("setMaxSearchSwipes", "setSwipeDeadZonePercentage", "flingForward", "scrollForward"):
            continue
        elif method == "scrollIntoView" and len(call) == 1 and isinstance(call[0], dict):
            return ScrollIntoView(scrollable, _nested(call[0]), vertical)
        elif method == "scrollTextIntoView" and len(call) == 1 and isinstance(call[0], str):
            target = {"mask": 0x01, "childOrSibling": [], "childOrSiblingSelector": [], "text": call[0]}
            return ScrollIntoView(scrollable, _nested(target), vertical)
        else:
            raise SelectorError(
                f"UiScrollable.{method}() is not supported here; use scrollIntoView(new UiSelector()...) "
                'or scrollTextIntoView("text")'
            )
    raise SelectorError(
        "a UiScrollable locator must end with .scrollIntoView(...) or .scrollTextIntoView(...)"
    )
