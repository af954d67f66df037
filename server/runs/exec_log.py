"""A run's execution log read from its trace and its workflow version (for runs without the engine's).

    entries = execution_log(definition, trace, status, error_message)

The entries have the shape of the engine's log (`interpreter.run_log`, docs/workflow-format.md):
`{"seq", "atMs", "step", "nodeId", "kind", "text", "values"}`, with `atMs` null (the trace has
each step's start, not each decision's) and `kind` one of `step` (the outcome and how long it
took), `retry` (how many and how far apart), `condition` (a `control.if` and its value),
`approval-answered` (who answered, how), `var-set` (a `setVar` value as written, a `readText`
value as read), `edge` (the way taken and why) or `end`. What the trace does not hold is missing:
wait polls, a pause or cancel seen, a variable's value made by a template.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

_TEXT_LIMIT = 200


def execution_log(
    definition: Mapping[str, Any],
    trace: Sequence[Mapping[str, Any]],
    status: str,
    error_message: str | None = None,
) -> list[dict[str, Any]]:
    """The decisions of a run, in order (see the module docstring)."""
    raw_nodes = definition.get("nodes")
    nodes = (
        {str(n.get("id")): n for n in raw_nodes if isinstance(n, Mapping)}
        if isinstance(raw_nodes, list)
        else {}
    )
    log: list[dict[str, Any]] = []
    for index, event in enumerate(trace):
        seq, node_id = int(event.get("seq", index + 1)), str(event.get("nodeId", ""))
        node = nodes.get(node_id, {})
        params = _mapping(node.get("params"))

        def add(
            kind: str, text: str, values: dict[str, Any] | None = None, seq: int = seq, node: str = node_id
        ) -> None:
            log.append(_entry(len(log) + 1, seq, node, kind, text, values))

        outcome = str(event.get("outcome", ""))
        attempts = int(event.get("attempts", 1) or 1)
        took = f"{int(event.get('durationMs', 0) or 0)} ms"
        message = f": {event['message']}" if event.get("message") else ""
        add("step", f"{event.get('kind', '')} {outcome} in {took}{message}")
        retry = node.get("retry") if isinstance(node.get("retry"), Mapping) else None
        if attempts > 1 and retry is not None:
            delay = retry.get("delayMs", 0)
            add("retry", f"tried {attempts} times (retry max {retry.get('max', 0)}, {delay} ms apart)")
        output = _mapping(event.get("output"))
        kind = event.get("kind")
        if kind == "control.if" and "result" in output:
            look = params.get("expr") or f"text '{params.get('textVisible', '')}' on screen"
            add("condition", f"{look} was {_json(output['result'])}", {"value": output["result"]})
        if kind == "control.approval" and outcome != "skipped":
            who = output.get("respondedBy")
            via = output.get("respondedVia")
            note = output.get("responseNote")
            answer = "approved" if outcome == "ok" else ("rejected" if who else "not answered")
            by = f" by {who}" if who else ""
            how = f" via {via}" if via else ""
            add("approval-answered", f"{answer}{by}{how}{f': {note}' if note else ''}")
        if kind == "control.setVar" and outcome == "ok":
            name = params.get("name", "?")
            add(
                "var-set",
                f"vars.{name} = {_json(params.get('value'))}",
                {"name": name, "value": params.get("value")},
            )
        if kind == "action.readText" and outcome == "ok" and params.get("saveAs"):
            name = params["saveAs"]
            add(
                "var-set",
                f"vars.{name} = {_json(output.get('text'))}",
                {"name": name, "value": output.get("text")},
            )
        edge = _edge(str(kind), outcome, output, node)
        following = trace[index + 1].get("nodeId") if index + 1 < len(trace) else None
        if following is not None:
            add("edge", f"{edge} → {following}{_why(outcome, node, edge)}")
    end = f"the run ended {status}"
    if error_message:
        end += f": {error_message}"
    if status == "cancelled":
        end = f"a cancel was seen before step {len(trace) + 1}: the run ended cancelled"
    log.append(
        _entry(len(log) + 1, None, None, "end", end, {"status": status, "errorMessage": error_message})
    )
    return log


def _entry(
    seq: int, step: int | None, node_id: str | None, kind: str, text: str, values: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "seq": seq,
        "atMs": None,
        "step": step,
        "nodeId": node_id,
        "kind": kind,
        "text": text,
        "values": values or {},
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _edge(kind: str, outcome: str, output: Mapping[str, Any], node: Mapping[str, Any]) -> str:
    if kind == "control.if" and outcome == "ok":
        return "true" if output.get("result") is True else "false"
    if kind == "control.approval" and outcome != "skipped":
        return "approved" if outcome == "ok" else "rejected"
    return "failed" if outcome == "failed" else "ok"


def _why(outcome: str, node: Mapping[str, Any], edge: str) -> str:
    if outcome == "skipped":
        return " (skipped: disabled)" if node.get("enabled") is False else " (not found, optional: skipped)"
    if outcome == "failed":
        return f" (failed, the workflow's {edge} edge)"
    return ""


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"
