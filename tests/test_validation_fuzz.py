"""validate() never raises, whatever JSON it gets, and what it says is consistent (hypothesis)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from interpreter.denylist import Denylist
from interpreter.graph import NODE_KINDS
from interpreter.schema import detailed_node_validator, workflow_schema
from interpreter.validation import Problem, errors_only, validate

DATA = Path(__file__).parent / "data"
SAMPLES = [
    json.loads((DATA / name).read_text())
    for name in ("capture_order.workflow.json", "all_kinds.workflow.json")
]
DENYLIST = Denylist(["com.bank.*", "com.example.settings"])
FULL_SCHEMA = Draft202012Validator(workflow_schema())

# words that make random JSON look like a workflow often enough to reach the deeper checks
WORDS = [
    *NODE_KINDS,
    "id",
    "kind",
    "params",
    "next",
    "start",
    "nodes",
    "ok",
    "failed",
    "true",
    "false",
    "approved",
    "rejected",
    "retry",
    "max",
    "delayMs",
    "selector",
    "text",
    "expr",
    "package",
    "inputs",
    "schemaVersion",
    "{{inputs.order}}",
    "{{nodes.open.output.text}}",
    "{{nodes.x}}",
    "{{ }}",
    "{{",
    "inputs.order ==",
    "com.bank.app",
    "com.example.shop",
    "open",
    "save",
    "check",
    "a/b~c",
    "",
    "nodes.open.output",
    "(",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(WORDS)
    | st.just("\ud800 lone surrogate")  # json.loads accepts it; UTF-8 output does not
)
keys = st.sampled_from(WORDS) | st.text(max_size=6)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def resolve(document: Any, pointer: str) -> Any:
    """The value an RFC 6901 pointer names; KeyError/IndexError when it names nothing."""
    current = document
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, list):
            if not part.isdigit():
                raise KeyError(pointer)
            current = current[int(part)]
        elif isinstance(current, dict):
            current = current[part]
        else:
            raise KeyError(pointer)
    return current


def check_report(definition: Any, problems: list[Problem]) -> None:
    """What every report must satisfy."""
    assert isinstance(problems, list)
    for problem in problems:
        assert isinstance(problem, Problem)
        assert problem.severity in ("error", "warning")
        assert problem.message
        assert problem.hint
        assert "internal error" not in problem.message, problem
        json.dumps(problem.to_json(), ensure_ascii=False).encode("utf-8")  # printable and sendable
        resolve(definition, problem.pointer)  # every pointer points at something that is there
        # the Rust gate and the detailed validator agree, so its raw fallback words never show
        assert "/api/v1/schemas/workflow.json" not in problem.hint, problem
    # whatever the full JSON Schema rejects, validation reports as an error
    if any(True for _ in FULL_SCHEMA.iter_errors(definition)):
        assert errors_only(problems), (definition, problems)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


@st.composite
def mutated_workflows(draw: st.DrawFn) -> Any:
    """A valid sample with one to three random edits: replace, delete, add or retarget."""
    workflow = copy.deepcopy(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(paths(workflow)))
        if not path:
            continue
        parent = workflow
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        action = draw(st.sampled_from(["replace", "delete", "add", "kind", "target"]))
        if action == "replace":
            parent[last] = draw(json_values)
        elif action == "delete":
            del parent[last]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(keys)] = draw(json_values)
        elif action == "kind" and isinstance(parent, dict):
            parent["kind"] = draw(st.sampled_from(NODE_KINDS))
        elif action == "target":
            parent[last] = draw(st.sampled_from(["open", "save", "chek", "broken", "nowhere", "stop"]))
    return workflow


FULL_NODE_SCHEMA = Draft202012Validator(
    {"$schema": FULL_SCHEMA.schema["$schema"], "$defs": FULL_SCHEMA.schema["$defs"], "$ref": "#/$defs/node"}
)


def error_places(errors: Any) -> list[tuple[str, str]]:
    return sorted((json.dumps(list(e.absolute_path)), str(e.validator)) for e in errors)


@FUZZ
@given(json_values)
def test_any_json_never_raises(definition: Any) -> None:
    check_report(definition, validate(definition, DENYLIST))


@FUZZ
@given(mutated_workflows())
def test_mutated_workflows_never_raise_and_report_consistently(definition: Any) -> None:
    check_report(definition, validate(definition, DENYLIST))


@FUZZ
@given(mutated_workflows())
def test_the_per_kind_node_validators_find_what_the_full_schema_finds(definition: Any) -> None:
    for node in definition.get("nodes", []) if isinstance(definition.get("nodes"), list) else []:
        kind = node.get("kind") if isinstance(node, dict) else None
        fast = error_places(detailed_node_validator(kind).iter_errors(node))
        assert fast == error_places(FULL_NODE_SCHEMA.iter_errors(node)), node
