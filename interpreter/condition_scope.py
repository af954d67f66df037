"""The part of a run's scope a CEL condition needs.

The CEL library converts every value it is given on each evaluation, and `nodes` grows
by one entry per executed node: handing it the whole scope makes a long run quadratic.
So a condition gets only the roots it names and, under `nodes`, only the node ids it
names (`nodes.check.output.text`, `nodes["check"]`); an expression that uses `nodes` in
another way (`size(nodes)`) gets them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from interpreter.expressions import ExpressionError, compile_expression

_NODES_WORD = re.compile(r"(?<![A-Za-z0-9_.])nodes\b")
_NODE_ACCESS = re.compile(r"""\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:"([^"\\]*)"|'([^'\\]*)')\s*\])""")


@lru_cache(maxsize=1024)
def needs(expr: str) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """The roots `expr` uses, and the node ids it reads (None: all of them). Raises `ExpressionError`."""
    roots = tuple(sorted({str(name) for name in compile_expression(expr).variables()}))
    if "nodes" not in roots:
        return roots, None
    ids: set[str] = set()
    for found in _NODES_WORD.finditer(expr):
        access = _NODE_ACCESS.match(expr, found.end())
        if access is None:
            return roots, None
        ids.add(next(group for group in access.groups() if group is not None))
    return roots, tuple(sorted(ids))


def scope_for(expr: str, scope: Mapping[str, Any]) -> dict[str, Any]:
    """The smallest scope that evaluates `expr` exactly as the whole `scope` would."""
    try:
        roots, node_ids = needs(expr)
    except ExpressionError:
        return dict(scope)  # evaluate() will raise the compile error with its own words
    narrowed: dict[str, Any] = {root: scope[root] for root in roots if root in scope}
    if "nodes" in narrowed and node_ids is not None:
        nodes = scope["nodes"]
        narrowed["nodes"] = {node_id: nodes[node_id] for node_id in node_ids if node_id in nodes}
    return narrowed
