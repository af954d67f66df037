"""Whatever a workflow holds, the engine returns a run: it never raises for the workflow's sake."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interpreter.appmodel import sample_apps
from interpreter.clock import VirtualClock
from interpreter.engine import run_workflow
from interpreter.simulator import SimulatedDevice
from interpreter.steps import STEP_FUNCTIONS
from interpreter.trace import RunStatus

MODEL = sample_apps()
KEYS = [
    "package",
    "text",
    "selector",
    "ms",
    "expr",
    "textVisible",
    "name",
    "value",
    "message",
    "key",
    "direction",
    "maxSwipes",
    "timeoutS",
    "url",
    "method",
    "match",
    "index",
    "timeoutMs",
    "saveAs",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(
        ["", "Sign in", "{{inputs.x}}", "com.example.shop", "up", "back", "vars.a == 1", "(", "GET"]
    ),
    st.text(max_size=5),
)
VALUES = st.one_of(
    SCALARS, st.dictionaries(st.sampled_from(["text", "resourceId", "index", "x"]), SCALARS, max_size=2)
)
NODE = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(sorted(STEP_FUNCTIONS) + ["action.nope"]),
        "params": st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4),
    },
    optional={
        "retry": st.fixed_dictionaries({"max": st.integers(0, 2), "delayMs": st.integers(0, 100)}),
        "optional": st.booleans(),
        "enabled": st.booleans(),
        "timeoutMs": st.integers(1, 300),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(NODE, min_size=1, max_size=5), st.dictionaries(st.sampled_from(["x", "y"]), SCALARS, max_size=2)
)
def test_any_workflow_ends_in_a_run(raw_nodes: list[dict[str, Any]], inputs: dict[str, Any]) -> None:
    nodes = []
    for position, raw in enumerate(raw_nodes):
        node = {"id": f"n{position}", **raw}
        if position + 1 < len(raw_nodes):
            node["next"] = {
                "ok": f"n{position + 1}",
                "failed": f"n{position + 1}",
                "true": f"n{position + 1}",
            }
        nodes.append(node)
    definition = {"schemaVersion": 1, "name": "fuzz", "start": "n0", "nodes": nodes, "timeoutS": 30}
    clock = VirtualClock()
    result = run_workflow(definition, SimulatedDevice(MODEL, clock), inputs=inputs, clock=clock)
    assert result.status in {RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.TIMEOUT}
    assert len(result.trace) <= len(nodes)
    for event in result.trace:
        assert event.outcome.value == "ok" or event.message
