"""Checking a run's inputs against the workflow's `inputs` JSON Schema (before the first step)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from interpreter.safe_regex import HOW_TO_FIX, backtracking_risk, schema_patterns


def check_inputs(schema: Any, inputs: Mapping[str, Any]) -> str | None:
    """Why `inputs` do not fit `schema`, in the schema's words; None when they fit or there is no schema."""
    if schema is None:
        return None
    if not isinstance(schema, Mapping):
        return "the workflow's inputs schema must be a JSON object (a JSON Schema)"
    schema_json = json.dumps(schema, sort_keys=True)
    risky = _risky_pattern(schema_json)
    if risky is not None:
        return f"the workflow's inputs schema cannot be checked: {risky}"
    try:
        validator = _validator(schema_json)
    except (jsonschema.SchemaError, TypeError, ValueError) as exc:
        detail = exc.message if isinstance(exc, jsonschema.SchemaError) else str(exc)
        return f"the workflow's inputs schema is not a valid JSON Schema: {detail}"
    error = best_match(validator.iter_errors(dict(inputs)))
    if error is None:
        return None
    where = "/" + "/".join(str(part) for part in error.absolute_path) if error.absolute_path else ""
    at = f" at {where}" if where else ""
    return f"the run's inputs do not match the workflow's inputs schema{at}: {error.message}"


@lru_cache(maxsize=256)
def _risky_pattern(schema_json: str) -> str | None:
    """Why one of the schema's regular expressions may backtrack without bound (it is never run), or None."""
    for at, pattern in schema_patterns(json.loads(schema_json)):
        risk = backtracking_risk(pattern)
        if risk is not None:
            where = "/" + "/".join(str(part) for part in at)
            return f"its regex {pattern!r} at {where} can take exponential time to fail: {risk}; {HOW_TO_FIX}"
    return None


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> jsonschema.Draft202012Validator:
    # Keyed by the schema's JSON text: the same workflow runs many times with one schema.
    schema = json.loads(schema_json)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)
