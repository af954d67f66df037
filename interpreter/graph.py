"""The workflow as a graph: node kinds, the outcomes each kind may follow, edges, reachability.

Shared by validation and the engine so that both read `next` the same way:
- a plain node id is the kind's primary outcome (`ok` for actions and `control.setVar`,
  `true` for `control.if`, `approved` for `control.approval`);
- a map goes from outcome to node id; an outcome with no entry ends the run.

Every helper here takes arbitrary JSON and ignores what is malformed (validation
reports that), so they are safe to call on a definition that has not been validated.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

ACTION_OUTCOMES = ("ok", "failed")

# kind -> the outcomes its `next` map may name, primary first. `control.fail` has none:
# it always ends the run.
OUTCOMES_BY_KIND: dict[str, tuple[str, ...]] = {
    "action.launchApp": ACTION_OUTCOMES,
    "action.stopApp": ACTION_OUTCOMES,
    "action.tapByText": ACTION_OUTCOMES,
    "action.tap": ACTION_OUTCOMES,
    "action.typeText": ACTION_OUTCOMES,
    "action.pressKey": ACTION_OUTCOMES,
    "action.swipe": ACTION_OUTCOMES,
    "action.scrollUntilVisible": ACTION_OUTCOMES,
    "action.waitForText": ACTION_OUTCOMES,
    "action.readText": ACTION_OUTCOMES,
    "action.screenshot": ACTION_OUTCOMES,
    "action.http": ACTION_OUTCOMES,
    "action.wait": ACTION_OUTCOMES,
    "control.if": ("true", "false"),
    "control.approval": ("approved", "rejected"),
    # a value's template may not resolve: the failure can be handled like an action's
    "control.setVar": ("ok", "failed"),
    "control.fail": (),
}

NODE_KINDS: tuple[str, ...] = tuple(OUTCOMES_BY_KIND)
ACTION_KINDS: frozenset[str] = frozenset(k for k in NODE_KINDS if k.startswith("action."))
CONTROL_KINDS: frozenset[str] = frozenset(k for k in NODE_KINDS if k.startswith("control."))

# Params that name an Android package: always literals, checked against the denylist.
PACKAGE_PARAM_KINDS: frozenset[str] = frozenset({"action.launchApp", "action.stopApp"})


def primary_outcome(kind: str) -> str | None:
    """The outcome a plain-string `next` stands for, or None for kinds with no way onward."""
    outcomes = OUTCOMES_BY_KIND.get(kind, ACTION_OUTCOMES)
    return outcomes[0] if outcomes else None


def next_targets(node: Any) -> dict[str, str]:
    """`{outcome: node id}` of a node's `next`, with a plain id turned into the primary outcome.

    Entries whose target is not a string are left out.
    """
    if not isinstance(node, Mapping):
        return {}
    nxt = node.get("next")
    kind = node.get("kind")
    if isinstance(nxt, str):
        outcome = primary_outcome(kind) if isinstance(kind, str) else "ok"
        return {outcome or "ok": nxt}
    if isinstance(nxt, Mapping):
        return {str(k): v for k, v in nxt.items() if isinstance(v, str)}
    return {}


def iter_nodes(definition: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """`(position, node)` for every node of the definition that is a JSON object."""
    nodes = definition.get("nodes") if isinstance(definition, Mapping) else None
    if not isinstance(nodes, list):
        return
    for position, node in enumerate(nodes):
        if isinstance(node, Mapping):
            yield position, node


def node_index(definition: Any) -> dict[str, int]:
    """Node id -> position in `nodes` (the first node with that id wins)."""
    index: dict[str, int] = {}
    for position, node in iter_nodes(definition):
        node_id = node.get("id")
        if isinstance(node_id, str) and node_id not in index:
            index[node_id] = position
    return index


def reachable(definition: Any) -> set[str]:
    """The ids of the nodes that some path from `start` reaches (start included if it exists)."""
    index = node_index(definition)
    nodes: list[Any] = definition["nodes"] if index else []
    start = definition.get("start") if isinstance(definition, Mapping) else None
    if not isinstance(start, str) or start not in index:
        return set()
    seen = {start}
    queue = deque([start])
    while queue:
        current = nodes[index[queue.popleft()]]
        for target in next_targets(current).values():
            if target in index and target not in seen:
                seen.add(target)
                queue.append(target)
    return seen
