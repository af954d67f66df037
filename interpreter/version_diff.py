"""`diff_definitions(before, after)`: what changed between two workflow definitions.

Nodes are matched by id: a node is added, removed, or changed field by field (`params/text`,
`next/ok`, `retry/max`, …); the workflow's own fields (name, inputs, start, …) are compared the
same way. Objects are compared key by key down to their leaves; lists and other values whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from interpreter.problems import pointer

_ABSENT = object()


def _changes(before: Any, after: Any, path: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in [*before, *(k for k in after if k not in before)]:
            yield from _changes(before.get(key, _ABSENT), after.get(key, _ABSENT), (*path, str(key)))
        return
    if before is _ABSENT and after is _ABSENT:
        return
    if before is _ABSENT:
        yield {"pointer": pointer(path), "change": "added", "after": after}
    elif after is _ABSENT:
        yield {"pointer": pointer(path), "change": "removed", "before": before}
    elif before != after or type(before) is not type(after):
        yield {"pointer": pointer(path), "change": "changed", "before": before, "after": after}


def field_changes(before: Any, after: Any) -> list[dict[str, Any]]:
    """Each leaf that differs: `{pointer, change: added|removed|changed, before?, after?}`."""
    return list(_changes(before, after, ()))


def _nodes(definition: Any) -> dict[str, Mapping[str, Any]]:
    nodes = definition.get("nodes") if isinstance(definition, Mapping) else None
    found: dict[str, Mapping[str, Any]] = {}
    for node in nodes if isinstance(nodes, list) else []:
        node_id = node.get("id") if isinstance(node, Mapping) else None
        if isinstance(node_id, str) and node_id not in found:
            found[node_id] = node
    return found


def _without_nodes(definition: Any) -> dict[str, Any]:
    return {k: v for k, v in definition.items() if k != "nodes"} if isinstance(definition, Mapping) else {}


def _summary(node_id: str, node: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": node_id, "kind": node.get("kind")}


def diff_definitions(before: Any, after: Any) -> dict[str, Any]:
    """What changed from `before` to `after`.

    `{workflow: [field change], nodes: {added: [{id, kind}], removed: [...], changed: [{id, kind, fields}]}}`
    """
    old, new = _nodes(before), _nodes(after)
    changed = []
    for node_id, node in new.items():
        if node_id in old:
            fields = field_changes(old[node_id], node)
            if fields:
                changed.append({**_summary(node_id, node), "fields": fields})
    return {
        "workflow": field_changes(_without_nodes(before), _without_nodes(after)),
        "nodes": {
            "added": [_summary(i, n) for i, n in new.items() if i not in old],
            "removed": [_summary(i, n) for i, n in old.items() if i not in new],
            "changed": changed,
        },
    }
