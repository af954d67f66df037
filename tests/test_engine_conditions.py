"""CEL conditions get a narrowed scope: same answers as the whole scope, without its cost."""

from __future__ import annotations

from typing import Any

import pytest

from interpreter.condition_scope import needs, scope_for
from interpreter.expressions import evaluate

SCOPE: dict[str, Any] = {
    "inputs": {"order": "A-1", "n": 2},
    "vars": {"marks": "xx", "nodes": "a var named nodes"},
    "nodes": {
        "read": {"output": {"text": "Order 7"}, "outcome": "ok"},
        "a-b": {"output": {"x": 1}, "outcome": "ok"},
        "other": {"output": {}, "outcome": "failed"},
    },
    "run": {"id": "r-1"},
    "device": {"serial": "sim-1"},
}


@pytest.mark.parametrize(
    "expr",
    [
        "nodes.read.output.text == 'Order 7'",
        "nodes['a-b'].output.x + inputs.n == 3",
        'nodes["other"].outcome == "failed" && size(vars.marks) == 2',
        "size(nodes) == 3",
        "has(nodes.read) && !has(nodes.missing)",
        "'nodes' == vars.nodes || run.id == 'r-1'",
        "device.serial.startsWith('sim')",
    ],
)
def test_the_narrowed_scope_gives_the_same_answer(expr: str) -> None:
    assert evaluate(expr, scope_for(expr, SCOPE)) == evaluate(expr, SCOPE)


def test_only_named_nodes_are_passed() -> None:
    narrowed = scope_for("nodes.read.output.text == 'x' && inputs.n > 1", SCOPE)
    assert set(narrowed) == {"nodes", "inputs"}
    assert set(narrowed["nodes"]) == {"read"}


def test_other_uses_of_nodes_get_them_all() -> None:
    assert needs("size(nodes) > 0") == (("nodes",), None)
    assert set(scope_for("size(nodes) > 0", SCOPE)["nodes"]) == set(SCOPE["nodes"])


def test_an_expression_that_does_not_compile_is_left_to_evaluate() -> None:
    assert scope_for("1 +", SCOPE) == SCOPE
