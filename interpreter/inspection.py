"""What the screen inspector shows of a window hierarchy: every element, and the selectors that find it.

For each element the candidates are built from what it shows (resource id, text, description,
class, and two-field combinations), and each is run through the shared matcher
(`interpreter.matcher.find_all`) over the same hierarchy, so the count a person sees is what a
step with that selector meets on the phone. A selector that matches several elements gets the
`index` that picks this one in the matcher's order. Unique selectors come first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from interpreter import matcher
from interpreter.hierarchy import UiNode
from interpreter.safe_regex import UNBOUNDED_S, LookBudget

# The fields a candidate selector may use, in the order a person would rather read them.
_FIELDS = ("resourceId", "text", "description", "className")


@dataclass(frozen=True, slots=True)
class SelectorCandidate:
    selector: dict[str, Any]
    matches: int

    def to_json(self) -> dict[str, Any]:
        return {"selector": self.selector, "matches": self.matches, "unique": self.matches == 1}


def _values(node: UiNode) -> dict[str, str]:
    found: dict[str, str] = {}
    if node.resource_id:
        found["resourceId"] = node.resource_id
    if node.text.strip():
        found["text"] = node.text.strip()
    if node.content_desc.strip():
        found["description"] = node.content_desc.strip()
    if node.class_name:
        found["className"] = node.class_name.rsplit(".", 1)[-1]
    return found


class _Counter:
    """`find_all` over one hierarchy, once per distinct selector, without rescanning the tree.

    Every visible node in the matcher's order comes from `find_all` itself (a pattern that any
    text fits); a selector's matches are then the nodes of that list the matcher's own
    `Selector.matches` accepts, looked for among the nodes with that text, description or
    resource id only (a two-field selector among the fewer matches of its fields), so the counts are
    the matcher's at a fraction of the cost on a screen of hundreds of elements.
    """

    def __init__(self, root: UiNode) -> None:
        # Our own pattern, linear in the texts: no bound on its time (a large screen must not fail).
        everything = matcher.Selector(text_matches="(?s).*")
        self.ordered = matcher.find_all(root, everything, LookBudget(UNBOUNDED_S))
        self._cache: dict[tuple[tuple[str, str], ...], list[UiNode]] = {}
        self._positions: dict[tuple[tuple[str, str], ...], dict[int, int]] = {}
        self._by: dict[str, dict[str, list[UiNode]]] = {"text": {}, "description": {}, "resourceId": {}}
        for node in self.ordered:
            texts = {matcher.plain_text(node.text), matcher.plain_text(node.content_desc)}
            for text in texts:
                self._by["text"].setdefault(text, []).append(node)
            self._by["description"].setdefault(matcher.plain_text(node.content_desc), []).append(node)
            self._by["resourceId"].setdefault(node.resource_id, []).append(node)

    def matches(self, fields: dict[str, str]) -> list[UiNode]:
        key = tuple(sorted(fields.items()))
        found = self._cache.get(key)
        if found is None:
            selector = matcher.Selector.from_dict(fields)
            first, value = next(iter(fields.items()))
            if len(fields) > 1:
                # Every match of several fields matches each alone, in the same order: filter the
                # shortest of those lists.
                candidates = min((self.matches({k: v}) for k, v in fields.items()), key=len)
            elif first in self._by:
                wanted = value if first == "resourceId" else matcher.plain_text(value)
                candidates = self._by[first].get(wanted, [])
            else:
                candidates = self.ordered
            found = [node for node in candidates if selector.matches(node)]
            self._cache[key] = found
        return found

    def position(self, fields: dict[str, str], node: UiNode) -> int | None:
        """Where `node` is among the matches of `fields` (None: not among them). Looked up, not
        searched: 10,000 elements of one text searched their list each, 5.6 s (about n^2)."""
        key = tuple(sorted(fields.items()))
        where = self._positions.get(key)
        if where is None:
            where = {id(match): i for i, match in enumerate(self.matches(fields))}
            self._positions[key] = where
        return where.get(id(node))


def selectors_for(node: UiNode, counter: _Counter) -> list[SelectorCandidate]:
    """The selectors that find `node` (with `index` when it is not the first match), unique first."""
    values = _values(node)
    combos: list[dict[str, str]] = [{name: values[name]} for name in _FIELDS if name in values]
    names = [name for name in _FIELDS if name in values and name != "className"]
    combos += [{a: values[a], b: values[b]} for i, a in enumerate(names) for b in names[i + 1 :]]
    if "className" in values and names:
        combos.append({names[0]: values[names[0]], "className": values["className"]})
    found: list[SelectorCandidate] = []
    seen: set[tuple[tuple[str, Any], ...]] = set()
    for fields in combos:
        matches = counter.matches(fields)
        position = counter.position(fields, node)
        if position is None:
            continue  # not visible, or the field means something else to the matcher
        selector: dict[str, Any] = dict(fields)
        if position:
            selector["index"] = position
        key = tuple(sorted(selector.items()))
        if key in seen:
            continue
        seen.add(key)
        found.append(SelectorCandidate(selector, len(matches)))
    # Unique first; then fewer matches; then fewer fields (shorter to read), in the order made.
    order = {id(c): i for i, c in enumerate(found)}
    found.sort(key=lambda c: (c.matches != 1, c.matches, len(c.selector), order[id(c)]))
    return found


def inspect_hierarchy(root: UiNode) -> dict[str, Any]:
    """Every element below `root` (document order, `id` = its position) with its attributes,
    its parent's id, and its selectors; the screen's size."""
    counter = _Counter(root)
    width, height = root.bounds.right, root.bounds.bottom
    elements: list[dict[str, Any]] = []
    stack: list[tuple[UiNode, int | None, int]] = [(child, None, 0) for child in reversed(root.children)]
    while stack:
        node, parent, depth = stack.pop()
        element_id = len(elements)
        b = node.bounds
        elements.append(
            {
                "id": element_id,
                "parent": parent,
                "depth": depth,
                "className": node.class_name,
                "text": node.text,
                "resourceId": node.resource_id,
                "contentDesc": node.content_desc,
                "package": node.package,
                "bounds": [b.left, b.top, b.right, b.bottom],
                "visible": b.on_screen(width, height),
                "clickable": node.clickable,
                "editable": node.editable,
                "scrollable": node.scrollable,
                "enabled": node.enabled,
                "checked": node.checked,
                "selected": node.selected,
                "password": node.password,
                "selectors": [c.to_json() for c in selectors_for(node, counter)],
            }
        )
        stack.extend((child, element_id, depth + 1) for child in reversed(node.children))
    return {"screen": {"width": width, "height": height}, "elements": elements}
