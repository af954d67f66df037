"""What was on screen instead: the words a failed find adds so that a person can fix the selector.

Only what the hierarchy holds is used (the same tree on every driver), so the words are the
same on the simulator and on a phone:

- matches that exist but fewer than `index` asks for: "3 elements match, so index 5 is out of
  range (0-2)";
- a match that is in the hierarchy but not wholly on screen: "... is there but off screen";
- for a selector of several fields, an element that fits all but one of them, and what that one
  holds instead: "'Submit' is there, but its class is android.widget.Button, not 'TextView'";
- texts (or resource ids) close to the one asked for, with how they differ: whitespace, case,
  a longer text that holds it, or just similar;
- items numbered like the text asked for ('Item 31' to 'Item 60' for 'Item 99': another item of
  the same list, not a typo);
- otherwise the first texts the screen shows.
"""

from __future__ import annotations

import dataclasses
import difflib
import re

from interpreter import matcher
from interpreter.hierarchy import UiNode
from interpreter.safe_regex import LookBudget

_MAX_NEAR = 3
_MAX_SHOWN = 5
_SIMILAR = 0.75
_DIGITS = re.compile(r"\d+")
# Texts and ids are compared for likeness (difflib) only up to this length: a label or an id, not a
# document. Comparing two 40,000-character texts of a few hundred letters took 5 s (about n^2), on
# the server when a simulated step fails.
_SIMILAR_MAX_CHARS = 500


def on_screen_instead(root: UiNode, selector: matcher.Selector, budget: LookBudget | None = None) -> str:
    """One clause saying what the screen held instead of what `selector` asks for (one look: its
    regexes run within `budget`)."""
    budget = budget if budget is not None else LookBudget()
    matches = matcher.find_all(root, selector, budget)
    if matches and selector.index >= len(matches):
        count = len(matches)
        noun = "element matches" if count == 1 else "elements match"
        span = "0" if count == 1 else f"0-{count - 1}"
        return f"{count} {noun}, so index {selector.index} is out of range ({span})"
    off_screen = [n for n in root.walk() if n is not root and selector.matches(n, budget)]
    if off_screen:
        return f"{_label(off_screen[0])} is there but not wholly on screen (scroll it into view first)"
    one_differs = _one_field_differs(root, selector, budget)
    if one_differs is not None:
        return one_differs
    visible = matcher.visible_nodes(root)
    near = _near(visible, selector)
    if near:
        return "on screen instead: " + ", ".join(f"{shown!r} ({why})" for shown, why in near)
    numbered = _numbered(visible, selector)
    if numbered is not None:
        return numbered
    texts = _texts(visible)
    if not texts:
        return "the screen shows no text"
    # No count: a widget that appears with time would change it, and the words with it.
    more = ", ..." if len(texts) > _MAX_SHOWN else ""
    return "on screen: " + ", ".join(repr(t) for t in texts[:_MAX_SHOWN]) + more


# A selector's fields, those that say the least about what a person wanted first: an element with the
# wanted text and another class says more than one of the wanted class with another text.
_FIELDS = ("class_name", "resource_id", "description", "text_matches", "text_contains", "text")


def _one_field_differs(root: UiNode, selector: matcher.Selector, budget: LookBudget) -> str | None:
    """For a selector of several fields: an element on screen that fits all of them but one, and what
    it holds for that one."""
    given = [name for name in _FIELDS if getattr(selector, name) is not None]
    if len(given) < 2:
        return None
    for name in given:
        relaxed = dataclasses.replace(selector, **{name: None}, index=0)
        found = matcher.find_all(root, relaxed, budget)
        if found:
            return f"{_label(found[0])} is there, but {_what_it_holds(found[0], selector, name)}"
    return None


def _what_it_holds(node: UiNode, selector: matcher.Selector, name: str) -> str:
    if name == "class_name":
        return f"its class is {node.class_name}, not {selector.class_name!r}"
    if name == "resource_id":
        held = repr(node.resource_id) if node.resource_id else "none"
        return f"its resource id is {held}, not {selector.resource_id!r}"
    if name == "description":
        held = repr(node.content_desc) if node.content_desc else "none"
        return f"its description is {held}, not {selector.description!r}"
    text = repr(node.text) if node.text else "empty"
    if name == "text_matches":
        return f"its text ({text}) does not match {selector.text_matches!r}"
    if name == "text_contains":
        return f"its text ({text}) does not contain {selector.text_contains!r}"
    return f"its text is {text}, not {selector.text!r}"


def _label(node: UiNode) -> str:
    shown = node.text or node.content_desc or node.resource_id
    return f"{shown!r}" if shown else f"a {node.class_name.rsplit('.', 1)[-1]}"


def _texts(nodes: list[UiNode]) -> list[str]:
    seen: dict[str, None] = {}
    for node in nodes:
        for text in (node.text, node.content_desc):
            if text.strip():
                seen.setdefault(text, None)
    return list(seen)


def _squashed(text: str) -> str:
    return "".join(text.split())


def _near(nodes: list[UiNode], selector: matcher.Selector) -> list[tuple[str, str]]:
    if selector.resource_id is not None:
        # Ids share their package prefix: only the names after it are compared.
        wanted_name = selector.resource_id.rsplit("/", 1)[-1]
        if len(wanted_name) > _SIMILAR_MAX_CHARS:
            return []
        names = {
            name: rid
            for n in nodes
            if (rid := n.resource_id) and len(name := rid.rsplit("/", 1)[-1]) <= _SIMILAR_MAX_CHARS
        }
        close = difflib.get_close_matches(wanted_name, list(names), _MAX_NEAR, _SIMILAR)
        return [(names[name], "similar resource id") for name in close]
    wanted = selector.text if selector.text is not None else selector.description
    if wanted is not None:
        return _near_exact(_texts(nodes), wanted)
    if selector.text_contains is not None:
        needle = _squashed(selector.text_contains).casefold()
        held = [t for t in _texts(nodes) if needle and needle in _squashed(t).casefold()]
        return [(t, "whitespace differs") for t in held[:_MAX_NEAR]]
    return []


def _numbered_like(shown: str, wanted: str) -> bool:
    """`shown` is another item of the numbered series `wanted` belongs to ('Item 49' for 'Item 99')."""
    if shown == wanted or _DIGITS.search(wanted) is None:
        return False
    return _DIGITS.sub("#", shown).casefold() == _DIGITS.sub("#", wanted).casefold()


def _numbered(nodes: list[UiNode], selector: matcher.Selector) -> str | None:
    """The items on screen numbered like the text asked for, first to last, or None."""
    wanted = selector.text if selector.text is not None else selector.description
    if wanted is None:
        return None
    plain = matcher.plain_text(wanted)
    series = [text for text in _texts(nodes) if _numbered_like(matcher.plain_text(text), plain)]
    if not series:
        return None
    if len(series) == 1:
        return f"on screen instead, numbered like it: {series[0]!r}"
    return f"on screen instead, numbered like it: {series[0]!r} to {series[-1]!r}"


def _near_exact(texts: list[str], wanted: str) -> list[tuple[str, str]]:
    plain = matcher.plain_text(wanted)
    found: list[tuple[str, str]] = []
    for text in texts:
        shown = matcher.plain_text(text)
        if _squashed(shown) == _squashed(plain):
            why = "whitespace differs"
        elif shown.casefold() == plain.casefold():
            why = "case differs"
        elif _squashed(shown).casefold() == _squashed(plain).casefold():
            why = "case and whitespace differ"
        elif plain and plain in shown:
            why = "holds it: match contains would find it"
        elif _similar(shown, plain) and not _numbered_like(shown, plain):
            why = "similar"
        else:
            continue
        found.append((text, why))
        if len(found) == _MAX_NEAR:
            break
    return found


def _similar(shown: str, wanted: str) -> bool:
    """Whether two short texts read alike (difflib's ratio); long ones never are (`_SIMILAR_MAX_CHARS`)."""
    if len(shown) > _SIMILAR_MAX_CHARS or len(wanted) > _SIMILAR_MAX_CHARS:
        return False
    return difflib.SequenceMatcher(None, shown.casefold(), wanted.casefold()).ratio() >= _SIMILAR
