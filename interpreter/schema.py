"""The workflow JSON Schema (draft 2020-12, v1): where it lives, loaded once, and its validators.

The file `schemas/workflow.schema.json` is the one source; the server publishes it at
`/api/v1/schemas/workflow.json`. Validation checks a definition in two steps, both
derived from that file so that they cannot disagree with it:

- a fast gate (`jsonschema_rs`, compiled Rust) answers "valid or not" for the whole
  definition in about a millisecond for 1,000 nodes;
- only when the gate says no, the `jsonschema` package walks the parts that failed and
  gives the detailed errors that validation turns into readable problems.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, ValidationError, validators

WORKFLOW_SCHEMA_PATH = Path(__file__).parent / "schemas" / "workflow.schema.json"
SCHEMA_VERSION = 1
MAX_NODES = 5000  # the schema's nodes.maxItems


@cache
def _loaded() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(WORKFLOW_SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def workflow_schema() -> dict[str, Any]:
    """The workflow JSON Schema as a dict (a fresh copy: callers may change it freely)."""
    return copy.deepcopy(_loaded())


@cache
def _end_anchored(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA-262, where `$` ends the string; in Python's `re` it also
    # matches before a final newline, which would let "open\n" pass as a node id.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _end_anchored(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# The detailed validators read `pattern` as the Rust gate (and the JSON Schema spec) do.
_DetailedValidator: Any = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})  # type: ignore[no-untyped-call]


def _with_defs(root: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """`body` as a schema of its own that can still resolve `#/$defs/...` of the root."""
    return {"$schema": root["$schema"], "$defs": root["$defs"], **body}


@cache
def fast_workflow_validator() -> Any:
    """The compiled Rust validator of the whole definition (a yes/no gate)."""
    return jsonschema_rs.validator_for(_loaded())


@cache
def fast_node_validator() -> Any:
    """The compiled Rust validator of one node (`$defs/node`)."""
    return jsonschema_rs.validator_for(_with_defs(_loaded(), {"$ref": "#/$defs/node"}))


@cache
def detailed_top_validator() -> Any:
    """The Python validator of the definition with `nodes` items left open (nodes are checked one by one)."""
    top = copy.deepcopy(_loaded())
    top["properties"]["nodes"]["items"] = True
    return _DetailedValidator(top)


def detailed_node_validator(kind: Any = None) -> Any:
    """The Python validator of one node of `kind`, giving every error with its path inside the node.

    Equivalent to `$defs/node`, but only the branch of the node's own kind is kept and
    `$ref`s are inlined: a broken node is then checked several times faster, which
    matters when thousands of them are.
    """
    validators_by_kind = _detailed_node_validators()
    if isinstance(kind, str) and kind in validators_by_kind:
        return validators_by_kind[kind]
    return validators_by_kind[None]


def _inline_refs(schema: Any, defs: dict[str, Any]) -> Any:
    """`schema` with every `#/$defs/X` reference replaced by its target (the schema has no cycles)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        rest = {k: _inline_refs(v, defs) for k, v in schema.items() if k != "$ref"}
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return {**_inline_refs(defs[ref.removeprefix("#/$defs/")], defs), **rest}
        return rest
    if isinstance(schema, list):
        return [_inline_refs(item, defs) for item in schema]
    return schema


@cache
def _detailed_node_validators() -> dict[str | None, Any]:
    defs = _loaded()["$defs"]
    node = defs["node"]
    base = _inline_refs({k: v for k, v in node.items() if k != "allOf"}, defs)
    by_kind: dict[str | None, Any] = {None: _DetailedValidator(base)}  # unknown kinds: no branch applies
    for branch in node["allOf"]:
        kind = branch["if"]["properties"]["kind"]["const"]
        by_kind[kind] = _DetailedValidator({"allOf": [base, _inline_refs(branch["then"], defs)]})
    return by_kind


@cache
def inputs_metaschema_validator() -> Draft202012Validator:
    """Checks that a workflow's `inputs` is a draft 2020-12 JSON Schema (regex formats included)."""
    return Draft202012Validator(
        Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def schema_def(name: str) -> dict[str, Any]:
    """One entry of the schema's `$defs` (read only)."""
    found: dict[str, Any] = _loaded()["$defs"][name]
    return found
