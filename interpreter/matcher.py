"""The element matcher both drivers share (docs/workflow-format.md, "Element matching").

It works on a `UiNode` tree, whether the simulator's model built it or it was parsed
from the XML a phone dumped, so a selector means the same thing everywhere:

- whitespace, once for all: `text`, `textContains` and `description` compare texts with
  whitespace made plain (`plain_text`): leading and trailing whitespace dropped, and every
  run of whitespace inside (spaces, tabs, line breaks, no-break spaces) read as one space,
  so a tab on screen matches a space in the selector whether a dump kept it or turned it
  into a space; `textMatches` sees the text as the phone shows it (write `\\s` for any
  whitespace), and so does `readText`;
- `text` (and `tapByText` `exact`): equal, case-sensitive, against the node's `text`, then
  its `content-desc`;
- `textContains` (`contains`): case-insensitive substring of `text` or `content-desc`;
- `textMatches` (`regex`): a full match (Python `re`'s syntax) against `text` or `content-desc`,
  run with a bound on its CPU time (`interpreter.safe_regex.LookBudget`: one second a look at the
  screen; past it the look fails with `RegexTooSlow`, which says how to rewrite the pattern);
- `resourceId`: equal; `description`: equal to `content-desc`;
- `className`: equal, or equal to the part after the last dot when the selector has no dot;
- several fields in one selector must all hold;
- only nodes whose bounds lie wholly on the screen count (the screen is the bounds of
  the `hierarchy` root, else 1080x2340);
- matches are ordered clickable first, then top to bottom, then left to right, and
  `index` (0-based) picks in that order; a match whose centre an options menu or a dialog above it
  covers (a tap there would land on that window) comes after every other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from interpreter.hierarchy import SCREEN_HEIGHT, SCREEN_WIDTH, Bounds, UiNode
from interpreter.safe_regex import HOW_TO_FIX, LookBudget, backtracking_risk, compile_user

MatchMode = Literal["exact", "contains", "regex"]

_SELECTOR_KEYS = ("text", "textContains", "textMatches", "resourceId", "description", "className")


@dataclass(frozen=True, slots=True)
class Selector:
    """What to look for. Build one with `Selector.from_dict` or `tap_by_text_selector`."""

    text: str | None = None
    text_contains: str | None = None
    text_matches: str | None = None
    resource_id: str | None = None
    description: str | None = None
    class_name: str | None = None
    index: int = 0

    def __post_init__(self) -> None:
        fields = (self.text, self.text_contains, self.text_matches)
        if all(f is None for f in (*fields, self.resource_id, self.description, self.class_name)):
            raise ValueError(f"a selector needs at least one of {', '.join(_SELECTOR_KEYS)}")
        if self.index < 0:
            raise ValueError(f"selector index must be 0 or more, got {self.index}")
        if self.text_matches is not None:
            compile_pattern(self.text_matches)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Selector:
        """From a workflow selector dict (`text`, `textContains`, ..., `index`).

        Raises ValueError (with a message fit for a trace) on an unknown key, a
        non-string value or a regex that does not compile.
        """
        unknown = sorted(set(data) - {*_SELECTOR_KEYS, "index"})
        if unknown:
            raise ValueError(
                f"unknown selector key(s) {', '.join(unknown)}; use {', '.join(_SELECTOR_KEYS)}, index"
            )
        for key in _SELECTOR_KEYS:
            if key in data and not isinstance(data[key], str):
                raise ValueError(f"selector {key} must be a string, got {data[key]!r}")
        index = data.get("index", 0)
        if not isinstance(index, int) or isinstance(index, bool):
            raise ValueError(f"selector index must be an integer, got {index!r}")
        return cls(
            text=data.get("text"),
            text_contains=data.get("textContains"),
            text_matches=data.get("textMatches"),
            resource_id=data.get("resourceId"),
            description=data.get("description"),
            class_name=data.get("className"),
            index=index,
        )

    def describe(self) -> str:
        """Words for a trace message, e.g. `text 'New order'` or `resourceId 'com.x:id/a' (index 1)`."""
        parts = [
            f"{label} {value!r}"
            for label, value in (
                ("text", self.text),
                ("text containing", self.text_contains),
                ("text matching", self.text_matches),
                ("resourceId", self.resource_id),
                ("description", self.description),
                ("className", self.class_name),
            )
            if value is not None
        ]
        suffix = f" (index {self.index})" if self.index else ""
        return " and ".join(parts) + suffix

    def matches(self, node: UiNode, budget: LookBudget | None = None) -> bool:
        """Whether the node fits every field of the selector (visibility is not checked here).

        `textMatches` runs within `budget` (one look's; a fresh one when none is given): share one
        over the nodes of a screen. `RegexTooSlow` when it is spent."""
        if self.resource_id is not None and node.resource_id != self.resource_id:
            return False
        if self.class_name is not None and not _class_matches(node.class_name, self.class_name):
            return False
        if self.description is not None and plain_text(node.content_desc) != plain_text(self.description):
            return False
        if self.text is not None:
            wanted = plain_text(self.text)
            if plain_text(node.text) != wanted and plain_text(node.content_desc) != wanted:
                return False
        if self.text_contains is not None:
            needle = plain_text(self.text_contains).casefold()
            text, desc = plain_text(node.text).casefold(), plain_text(node.content_desc).casefold()
            if needle not in text and needle not in desc:
                return False
        if self.text_matches is not None:
            look = budget if budget is not None else LookBudget()
            pattern = self.text_matches
            if not look.fullmatch(pattern, node.text) and not look.fullmatch(pattern, node.content_desc):
                return False
        return True


def plain_text(text: str) -> str:
    """`text` as the matcher compares it: trimmed, each run of whitespace inside one space."""
    if not text or (text.isprintable() and "  " not in text and text == text.strip()):
        return text  # the common case, kept cheap: this runs on every node at every poll
    return " ".join(text.split())


def compile_pattern(pattern: str) -> None:
    """Check a user's regex: a bad one raises ValueError saying where it breaks, and so does one
    that could backtrack without bound (`interpreter.safe_regex`). It then runs on the `regex` engine
    (the same syntax and meaning, with a time bound)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise ValueError(f"invalid regex {pattern!r}: {exc.msg}{where}") from exc
    risk = backtracking_risk(pattern)
    if risk is not None:
        raise ValueError(f"regex {pattern!r} can take exponential time to fail: {risk}; {HOW_TO_FIX}")
    try:
        compile_user(pattern)
    except Exception as exc:  # noqa: BLE001 - the engine's own words, whatever it raised
        raise ValueError(f"invalid regex {pattern!r}: {exc}") from exc


def tap_by_text_selector(text: str, match: MatchMode = "exact", index: int = 0) -> Selector:
    """The selector of `action.tapByText {text, match, index}`; ValueError on an unknown mode or bad regex."""
    if match == "exact":
        return Selector(text=text, index=index)
    if match == "contains":
        return Selector(text_contains=text, index=index)
    if match == "regex":
        return Selector(text_matches=text, index=index)
    raise ValueError(f"unknown match {match!r}; use exact, contains or regex")


def _class_matches(node_class: str, wanted: str) -> bool:
    if node_class == wanted:
        return True
    return "." not in wanted and node_class.rsplit(".", 1)[-1] == wanted


def _screen_of(root: UiNode) -> tuple[int, int]:
    """The screen size: the `hierarchy` root spans the whole screen; any other root means 1080x2340."""
    if root.class_name == "hierarchy":
        return root.bounds.right, root.bounds.bottom
    return SCREEN_WIDTH, SCREEN_HEIGHT


def find_all(root: UiNode, selector: Selector, budget: LookBudget | None = None) -> list[UiNode]:
    """Every visible node below `root` (not the root itself) that the selector matches, in match order.

    One look: `textMatches` runs within `budget` (a fresh `LookBudget` when none is given) over all
    the nodes; `RegexTooSlow` when it is spent."""
    width, height = _screen_of(root)
    budget = budget if budget is not None else LookBudget()
    found: list[UiNode] = []
    covered: set[int] = set()  # id() of matches whose centre a popup or dialog above them covers
    popups = _popups(root, width, height)
    for window_index, window in enumerate(root.children):
        above = [bounds for index, bounds in popups if index > window_index]
        stack = [window]
        while stack:
            node = stack.pop()
            b = node.bounds
            # Bounds.on_screen, inlined: this runs on every node at every poll.
            on_screen = 0 <= b.left < b.right <= width and 0 <= b.top < b.bottom <= height
            if on_screen and selector.matches(node, budget):
                found.append(node)
                if above and any(popup.contains(*b.center) for popup in above):
                    covered.add(id(node))
            if node.children:
                stack.extend(reversed(node.children))
    found.sort(key=lambda n: (id(n) in covered, not n.clickable, n.bounds.top, n.bounds.left))
    return found


def _popups(root: UiNode, width: int, height: int) -> list[tuple[int, Bounds]]:
    """The windows of a dump that cover part of the screen (an options menu, a dialog), with their
    place among the root's windows (a later one lies above an earlier one); a full-screen window, a
    toast (which takes no touch) and a root that is not a dump's `hierarchy` give none."""
    if root.class_name != "hierarchy" or len(root.children) < 2:
        return []
    return [
        (index, window.bounds)
        for index, window in enumerate(root.children)
        if index > 0
        and window.bounds != Bounds(0, 0, width, height)
        and not any(node.resource_id == "android:id/message" for node in window.walk())
    ]


def find(root: UiNode, selector: Selector, budget: LookBudget | None = None) -> UiNode | None:
    """The match the selector's `index` picks, or None."""
    matches = find_all(root, selector, budget)
    return matches[selector.index] if selector.index < len(matches) else None


# Android's text fields: EditText and its subclasses (AutoCompleteTextView and friends end in
# "TextView", so they are named). A dump has no "editable" attribute: the class is what both
# drivers and the simulator agree on.
_EDITABLE_CLASSES = ("AutoCompleteTextView", "MultiAutoCompleteTextView", "SearchView$SearchAutoComplete")


def is_editable(node: UiNode) -> bool:
    """Whether typing into the node (or a text field inside it, as a wrapper holds one) can work."""
    return any(
        n.class_name.endswith("EditText") or n.class_name.rsplit(".", 1)[-1] in _EDITABLE_CLASSES
        for n in node.walk()
    )


def visible_nodes(root: UiNode) -> list[UiNode]:
    """Every node below `root` that lies wholly on the screen, top to bottom, then left to right."""
    width, height = _screen_of(root)
    nodes = [n for n in root.walk() if n is not root and n.bounds.on_screen(width, height)]
    nodes.sort(key=lambda n: (n.bounds.top, n.bounds.left))
    return nodes


def visible_texts(root: UiNode) -> list[str]:
    """The non-empty texts of the visible nodes, top to bottom (for screenshots and messages)."""
    return [n.text for n in visible_nodes(root) if n.text.strip()]
