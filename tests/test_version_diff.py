"""diff_definitions: nodes added, removed and changed field by field; the workflow's own fields."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from interpreter.version_diff import diff_definitions

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "capture_order.json"


def _example() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return loaded


def test_the_same_definition_has_no_changes() -> None:
    assert diff_definitions(_example(), _example()) == {
        "workflow": [],
        "nodes": {"added": [], "removed": [], "changed": []},
    }


def test_nodes_added_removed_and_changed_per_field() -> None:
    before = _example()
    after = copy.deepcopy(before)
    nodes = {n["id"]: n for n in after["nodes"]}
    nodes["new"]["params"]["text"] = "New Order"  # changed
    nodes["new"]["retry"] = {"max": 3, "delayMs": 500}  # max changed, delayMs unchanged
    del nodes["open"]["params"]["stopFirst"]  # removed field
    nodes["save"]["next"] = {"ok": "check", "failed": "alert"}  # a string became a map
    after["nodes"] = [n for n in after["nodes"] if n["id"] != "password"]
    after["nodes"].append({"id": "alert", "kind": "control.fail", "params": {"message": "not saved"}})
    after["name"] = "Capture order v2"
    after["inputs"]["properties"]["order"]["minLength"] = 2

    diff = diff_definitions(before, after)

    assert diff["nodes"]["added"] == [{"id": "alert", "kind": "control.fail"}]
    assert diff["nodes"]["removed"] == [{"id": "password", "kind": "action.typeText"}]
    changed = {c["id"]: c["fields"] for c in diff["nodes"]["changed"]}
    assert set(changed) == {"open", "new", "save"}
    assert changed["new"] == [
        {"pointer": "/params/text", "change": "changed", "before": "New order", "after": "New Order"},
        {"pointer": "/retry/max", "change": "changed", "before": 2, "after": 3},
    ]
    assert changed["open"] == [{"pointer": "/params/stopFirst", "change": "removed", "before": True}]
    assert changed["save"] == [
        {
            "pointer": "/next",
            "change": "changed",
            "before": "check",
            "after": {"ok": "check", "failed": "alert"},
        }
    ]
    assert diff["workflow"] == [
        {"pointer": "/name", "change": "changed", "before": "Capture order", "after": "Capture order v2"},
        {"pointer": "/inputs/properties/order/minLength", "change": "changed", "before": 1, "after": 2},
    ]


def test_a_value_of_another_type_is_a_change_even_when_equal_in_python() -> None:
    before = {"nodes": [{"id": "a", "kind": "control.setVar", "params": {"name": "x", "value": 1}}]}
    after = {"nodes": [{"id": "a", "kind": "control.setVar", "params": {"name": "x", "value": True}}]}
    fields = diff_definitions(before, after)["nodes"]["changed"][0]["fields"]
    assert fields == [{"pointer": "/params/value", "change": "changed", "before": 1, "after": True}]


def test_broken_definitions_are_compared_as_far_as_they_go() -> None:
    diff = diff_definitions({"nodes": "x"}, {"nodes": [{"id": "a", "kind": "action.wait"}, 3]})
    assert diff["nodes"]["added"] == [{"id": "a", "kind": "action.wait"}]
    assert diff_definitions(None, [])["workflow"] == []
