"""Why a template path does not resolve, in words a person can act on.

`resolve` (`interpreter.templates`) only knows that a path failed; the engine knows the
workflow's nodes and what has run, so it asks here for the reason: the node has not run yet,
was skipped, failed, does not exist, or the field does not (with "did you mean").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interpreter.problems import did_you_mean


def unresolved_reason(path: str, scope: Mapping[str, Any], kinds: Mapping[str, str]) -> str:
    """`template '{{path}}' does not resolve: <why>`; `kinds` maps the workflow's node ids to kinds."""
    return f"template '{{{{{path}}}}}' does not resolve: {_why(path.split('.'), scope, kinds)}"


def _why(parts: list[str], scope: Mapping[str, Any], kinds: Mapping[str, str]) -> str:
    root = parts[0]
    if root == "nodes":
        return _why_node(parts, scope, kinds)
    value = scope.get(root)
    if len(parts) > 1 and isinstance(value, Mapping) and parts[1] not in value:
        name = parts[1]
        if root == "inputs":
            given = ", ".join(sorted(value)) or "none"
            return f"the run has no input '{name}' (inputs given: {given}){did_you_mean(name, value)}"
        if root == "vars":
            made = ", ".join(sorted(value)) or "none yet"
            return (
                f"no variable '{name}' was set before this step (by control.setVar, or readText saveAs; "
                f"set: {made}){did_you_mean(name, value)}"
            )
    return _missing(parts, 1, value, root)


def _why_node(parts: list[str], scope: Mapping[str, Any], kinds: Mapping[str, str]) -> str:
    if len(parts) < 2:
        return "name a node's output: {{nodes.ID.output.FIELD}}"
    node_id = parts[1]
    if node_id not in kinds:
        return f"there is no node '{node_id}' in the workflow{did_you_mean(node_id, kinds)}"
    ran: Mapping[str, Any] | None = scope.get("nodes", {}).get(node_id)
    if ran is None:
        return (
            f"node '{node_id}' ({kinds[node_id]}) has not run yet when this step runs: a template reads only "
            "nodes that ran before it on the run's path"
        )
    if len(parts) < 3 or parts[2] not in ran:
        field = parts[2] if len(parts) > 2 else ""
        return f"a node has 'output' and 'outcome', not '{field}': write {{{{nodes.{node_id}.output.FIELD}}}}"
    outcome = ran.get("outcome")
    if outcome == "skipped" and parts[2] == "output":
        return f"node '{node_id}' ({kinds[node_id]}) was skipped, so it has no output"
    if outcome == "failed" and parts[2] == "output" and not ran.get("output"):
        return f"node '{node_id}' ({kinds[node_id]}) failed, so it has no output"
    reason = _missing(parts, 3, ran.get(parts[2]), ".".join(parts[:3]))
    return f"node '{node_id}' ({kinds[node_id]}) ended {outcome}, but {reason}"


def _missing(parts: list[str], start: int, value: Any, prefix: str) -> str:
    """Walk `parts[start:]` from `value` (found at `prefix`) and say where the path breaks."""
    for part in parts[start:]:
        if isinstance(value, Mapping):
            if part not in value:
                fields = ", ".join(sorted(map(str, value))) or "nothing"
                return f"'{prefix}' has no '{part}' (it has: {fields}){did_you_mean(part, value)}"
            value = value[part]
        elif isinstance(value, list):
            if not part.isdigit() or int(part) >= len(value):
                count = len(value)
                return f"'{prefix}' is a list of {count} item(s): '{part}' is not an index of it (0 is first)"
            value = value[int(part)]
        else:
            shown = "null" if value is None else type(value).__name__
            return f"'{prefix}' is {shown}, which has no '{part}'"
        prefix = f"{prefix}.{part}"
    return f"'{prefix}' is not there"
