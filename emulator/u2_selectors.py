"""uiautomator2 selector dicts, matched over a `UiNode` tree with `UiSelector` semantics.

The client sends a selector as `{"mask": bits, "childOrSibling": [], "childOrSiblingSelector": [],
<field>: value, ...}`; the mask says which fields are set (the client keeps unset fields out, but
the mask is what the real server trusts, so it is what we trust too).

Semantics follow `androidx.test.uiautomator.UiSelector`, not phoneflow's own matcher:
`text` is exact and case-sensitive, `textContains` is a case-sensitive substring, `*Matches` is a
Java regex over the whole value (`re.fullmatch` here), `index` is the position among the parent's
children, `instance` picks the n-th match in document order. Only nodes with some part on the
screen count, as uiautomator only sees what is visible to the user.

`d(...).child(...)` and `.sibling(...)` chain further selectors (`childOrSibling` names each
link): the search is QueryController's — a depth-first walk that, on a match of one link
(counting that link's own `instance`), goes on with the next link among the matched node's
descendants (`child`) or its parent's (`sibling`, UiSelector.fromParent).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from interpreter.hierarchy import Bounds, UiNode

__all__ = ["Located", "SelectorError", "U2Selector", "locate", "locate_all", "visible_bounds", "walk_visible"]


class SelectorError(ValueError):
    """The selector dict cannot be understood (a bad regex, a field of the wrong type, childOrSibling)."""


def _text(node: UiNode) -> str:
    return node.text


def _desc(node: UiNode) -> str:
    return node.content_desc


def _class(node: UiNode) -> str:
    return node.class_name


def _package(node: UiNode) -> str:
    return node.package


def _resource(node: UiNode) -> str:
    return node.resource_id


# (field, mask bit, kind, attribute getter). Kinds: eq, contains, matches, startswith, bool, int.
_STRING_FIELDS: tuple[tuple[str, int, str, Callable[[UiNode], str]], ...] = (
    ("text", 0x01, "eq", _text),
    ("textContains", 0x02, "contains", _text),
    ("textMatches", 0x04, "matches", _text),
    ("textStartsWith", 0x08, "startswith", _text),
    ("className", 0x10, "eq", _class),
    ("classNameMatches", 0x20, "matches", _class),
    ("description", 0x40, "eq", _desc),
    ("descriptionContains", 0x80, "contains", _desc),
    ("descriptionMatches", 0x100, "matches", _desc),
    ("descriptionStartsWith", 0x200, "startswith", _desc),
    ("packageName", 0x80000, "eq", _package),
    ("packageNameMatches", 0x100000, "matches", _package),
    ("resourceId", 0x200000, "eq", _resource),
    ("resourceIdMatches", 0x400000, "matches", _resource),
)


def _focusable(node: UiNode) -> bool:
    # Same rule as the hierarchy XML writer, so `focusable=True` agrees with the dump.
    return node.clickable or node.editable


_BOOL_FIELDS: tuple[tuple[str, int, Callable[[UiNode], bool]], ...] = (
    ("checkable", 0x400, lambda n: n.checkable),
    ("checked", 0x800, lambda n: n.checked),
    ("clickable", 0x1000, lambda n: n.clickable),
    ("longClickable", 0x2000, lambda n: False),
    ("scrollable", 0x4000, lambda n: n.scrollable),
    ("enabled", 0x8000, lambda n: n.enabled),
    ("focusable", 0x10000, _focusable),
    ("focused", 0x20000, lambda n: n.focused),
    ("selected", 0x40000, lambda n: n.selected),
)

_INDEX_BIT = 0x800000
_INSTANCE_BIT = 0x1000000


@dataclass(frozen=True, slots=True)
class Located:
    """A node found by a selector, with what uiautomator knows about its place in the tree."""

    node: UiNode
    index: int
    visible: Bounds


@dataclass(frozen=True, slots=True)
class _Link:
    """One UiSelector of a chain: its tests, `index`, `instance`, and how it follows the previous link."""

    tests: tuple[Callable[[UiNode], bool], ...]
    index: int | None
    instance: int
    relation: str  # "" for the first link, else "child" or "sibling"
    description: str
    instance_set: bool = False  # the mask names `instance` (count() then answers 0 or 1, as the real server)

    def matches(self, node: UiNode, index: int) -> bool:
        if self.index is not None and index != self.index:
            return False
        return all(test(node) for test in self.tests)


@dataclass(frozen=True, slots=True)
class U2Selector:
    """A parsed selector: the first UiSelector and any child/sibling links after it."""

    links: tuple[_Link, ...]

    @property
    def description(self) -> str:
        text = self.links[0].description
        for link in self.links[1:]:
            text += f".{'childSelector' if link.relation == 'child' else 'fromParent'}({link.description})"
        return text

    @property
    def instance(self) -> int:
        return self.links[-1].instance

    @classmethod
    def parse(cls, raw: Any) -> U2Selector:
        """Build from the client's dict. Raises `SelectorError` saying which field is wrong."""
        first = _parse_link(raw, "")
        relations = raw.get("childOrSibling") or []
        subs = raw.get("childOrSiblingSelector") or []
        if not isinstance(relations, list) or not isinstance(subs, list) or len(relations) != len(subs):
            raise SelectorError(
                "selector 'childOrSibling' and 'childOrSiblingSelector' must be lists of the same length"
            )
        links = [first]
        for relation, sub in zip(relations, subs, strict=True):
            if relation not in ("child", "sibling"):
                raise SelectorError(f"selector 'childOrSibling' holds {relation!r}; use 'child' or 'sibling'")
            if isinstance(sub, Mapping) and (sub.get("childOrSibling") or sub.get("childOrSiblingSelector")):
                raise SelectorError(
                    "a child or sibling selector cannot itself have children; chain them instead"
                )
            links.append(_parse_link(sub, relation))
        return cls(tuple(links))

    def with_instance(self, instance: int) -> U2Selector:
        """The same selector with the last link's `instance` set (how the client numbers matches)."""
        last = self.links[-1]
        head = last.description.removesuffix("]").split("instance=")[0].removesuffix(", ")
        shown = f"{head}{'' if head.endswith('[') else ', '}instance={instance}]"
        link = _Link(last.tests, last.index, instance, last.relation, shown, instance_set=True)
        return U2Selector(self.links[:-1] + (link,))


def _parse_link(raw: Any, relation: str) -> _Link:
    if not isinstance(raw, Mapping):
        raise SelectorError(f"a selector must be a JSON object with a 'mask', got {type(raw).__name__}")
    mask = raw.get("mask", 0)
    if not isinstance(mask, int) or isinstance(mask, bool):
        raise SelectorError(f"selector 'mask' must be an integer, got {mask!r}")
    tests: list[Callable[[UiNode], bool]] = []
    shown: list[str] = []
    for name, bit, kind, getter in _STRING_FIELDS:
        if mask & bit:
            value = _field(raw, name, str)
            tests.append(_string_test(name, kind, value, getter))
            shown.append(f"{name}={value!r}")
    for name, bit, bool_getter in _BOOL_FIELDS:
        if mask & bit:
            wanted = _field(raw, name, bool)
            tests.append(_bool_test(wanted, bool_getter))
            shown.append(f"{name}={wanted}")
    index = _field(raw, "index", int) if mask & _INDEX_BIT else None
    instance = _field(raw, "instance", int) if mask & _INSTANCE_BIT else 0
    if index is not None:
        shown.append(f"index={index}")
    if mask & _INSTANCE_BIT:
        shown.append(f"instance={instance}")
    description = "UiSelector[" + ", ".join(shown) + "]"
    return _Link(
        tuple(tests), index, instance, relation, description, instance_set=bool(mask & _INSTANCE_BIT)
    )


def _field(raw: Mapping[str, Any], name: str, kind: type) -> Any:
    if name not in raw:
        raise SelectorError(f"selector mask sets '{name}' but the selector has no '{name}' field")
    value = raw[name]
    # bool is an int in Python; keep the two apart as Java does.
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise SelectorError(f"selector field '{name}' must be an integer, got {value!r}")
    if not isinstance(value, kind):
        raise SelectorError(f"selector field '{name}' must be a {kind.__name__}, got {value!r}")
    return value


def _string_test(
    name: str, kind: str, value: str, getter: Callable[[UiNode], str]
) -> Callable[[UiNode], bool]:
    if kind == "eq":
        return lambda node: getter(node) == value
    if kind == "contains":
        return lambda node: value in getter(node)
    if kind == "startswith":
        return lambda node: getter(node).startswith(value)
    try:
        pattern = re.compile(value)
    except re.error as exc:
        raise SelectorError(
            f"selector field '{name}' is not a valid regular expression: {value!r} ({exc})"
        ) from exc
    return lambda node: pattern.fullmatch(getter(node)) is not None


def _bool_test(wanted: bool, getter: Callable[[UiNode], bool]) -> Callable[[UiNode], bool]:
    return lambda node: getter(node) == wanted


def visible_bounds(bounds: Bounds, clip: Bounds) -> Bounds | None:
    """The part of `bounds` inside `clip`, or None when nothing of it is inside."""
    left, top = max(bounds.left, clip.left), max(bounds.top, clip.top)
    right, bottom = min(bounds.right, clip.right), min(bounds.bottom, clip.bottom)
    if right <= left or bottom <= top:
        return None
    return Bounds(left, top, right, bottom)


def walk_visible(root: UiNode, width: int, height: int) -> Iterator[Located]:
    """Every node under `root` (not the root itself) that shows on a `width`×`height` screen.

    Document order, as uiautomator numbers `instance`. A node wholly off screen is skipped
    together with its subtree, as the accessibility service does not report it.
    """
    screen = Bounds(0, 0, width, height)
    stack: list[tuple[UiNode, int]] = [(child, i) for i, child in reversed(list(enumerate(root.children)))]
    while stack:
        node, index = stack.pop()
        shown = visible_bounds(node.bounds, screen)
        if shown is None:
            continue
        yield Located(node, index, shown)
        stack.extend((child, i) for i, child in reversed(list(enumerate(node.children))))


def locate_all(root: UiNode, selector: U2Selector, width: int, height: int) -> list[Located]:
    """Every visible node the selector matches, in document order (the last link's `instance` ignored)."""
    if len(selector.links) == 1:
        first = selector.links[0]
        return [
            found for found in walk_visible(root, width, height) if first.matches(found.node, found.index)
        ]
    found_all: list[Located] = []
    seen: set[int] = set()
    for instance in range(sum(1 for _ in walk_visible(root, width, height))):
        found = locate(root, selector.with_instance(instance), width, height)
        if found is None:
            break
        if id(found.node) not in seen:
            seen.add(id(found.node))
            found_all.append(found)
    return found_all


@dataclass(slots=True)
class _Parent:
    node: UiNode
    parent: _Parent | None


def locate(root: UiNode, selector: U2Selector, width: int, height: int) -> Located | None:
    """The node `selector` designates (counting each link's `instance`), or None."""
    return _Search(selector.links, Bounds(0, 0, width, height)).run(root)


class _Search:
    """QueryController.findNodeRegularRecursive over `UiNode`s, with one instance counter per link."""

    def __init__(self, links: tuple[_Link, ...], screen: Bounds) -> None:
        self.links = links
        self.screen = screen
        self.counts = [0] * len(links)

    def run(self, root: UiNode) -> Located | None:
        top = _Parent(root, None)
        for index, window in enumerate(root.children):
            found = self._visit(0, window, index, top)
            if found is not None:
                return found
        return None

    def _take(self, level: int) -> bool:
        # UiSelector.matchOrUpdateInstance: the instance-th match of this link is the one.
        if self.counts[level] == self.links[level].instance:
            return True
        self.counts[level] += 1
        return False

    def _visit(self, level: int, node: UiNode, index: int, parent: _Parent) -> Located | None:
        shown = visible_bounds(node.bounds, self.screen)
        if shown is None:
            return None
        here: _Parent | None = _Parent(node, parent)
        if self.links[level].matches(node, index) and self._take(level):
            if level == len(self.links) - 1:
                return Located(node, index, shown)
            level += 1
            if self.links[level].relation == "sibling":
                here = parent if parent.parent is not None else None  # the hierarchy root has no node
        if here is None:
            return None
        for child_index, child in enumerate(here.node.children):
            found = self._visit(level, child, child_index, here)
            if found is not None:
                return found
        return None
