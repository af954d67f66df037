"""Checking a run's inputs against the workflow's `inputs` JSON Schema (before the first step, and
when the server queues a run).

The schema is the account's and the inputs are whoever triggers the run's (an incoming hook's
caller too), so checking must cost about as much as the inputs are long, whatever both say:

* "valid or not" is decided by `jsonschema_rs` (compiled Rust): linear-time regular expressions,
  `uniqueItems` by hashing, combinators (`anyOf`, `oneOf`, ...) without re-walking the instance;
* what is wrong is then said by the Python `jsonschema`'s words (the same as ever), except where
  those would cost without bound: `uniqueItems` over objects compared pair by pair (4,000 objects
  took 13 s) is replaced by a hashing check, and a schema with combinators or references (whose
  every failing branch the Python library walks: nested `anyOf`s over a nested list doubled per
  level) gets a short answer without a location;
* a regular expression that could backtrack without bound is never run (`interpreter.safe_regex`),
  and the others the Python library runs (`pattern`, `patternProperties`, `additionalProperties`
  next to them) run within one look's CPU time (`safe_regex.LookBudget`): `.*a.*b` against a long
  text that fails is n^2, `.*x` searched for too. Past it, the inputs are said not to fit (the Rust
  gate decided that) without where, and the words say which regex to rewrite and how.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema import validators
from jsonschema.exceptions import ValidationError, best_match

from interpreter.safe_regex import HOW_TO_FIX, LookBudget, RegexTooSlow, backtracking_risk, schema_patterns

# Keywords whose failing instances the Python library explains by walking every branch.
_BRANCHING = frozenset(
    {"anyOf", "oneOf", "allOf", "not", "if", "then", "else", "$ref", "$dynamicRef", "dependentSchemas"}
    # The library matches `patternProperties` for `unevaluatedProperties` with no bound on the time.
    | {"unevaluatedProperties"}
)


@dataclass(frozen=True, slots=True)
class InputProblem:
    """One way the inputs do not fit: where (JSON pointer into the inputs, "" for the whole) and what."""

    pointer: str
    message: str


class InputsSchemaError(ValueError):
    """The workflow's inputs schema cannot be used; the message says why."""


def with_defaults(schema: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """`inputs` with the `default` of each top-level property of the schema that they do not give.

    The builder's simulation sends a field's default when nothing was typed; a run triggered
    through the API, a schedule, a hook or `phoneflow simulate` gets the same, so
    `{{inputs.greeting}}` renders the schema's default instead of failing as not given."""
    filled = dict(inputs)
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if isinstance(properties, Mapping):
        for name, spec in properties.items():
            if name not in filled and isinstance(spec, Mapping) and "default" in spec:
                filled[name] = copy.deepcopy(spec["default"])
    return filled


def check_inputs(schema: Any, inputs: Mapping[str, Any]) -> str | None:
    """Why `inputs` do not fit `schema`, in the schema's words; None when they fit or there is no schema."""
    if schema is None:
        return None
    try:
        problems = input_problems(schema, inputs, every=False)
    except InputsSchemaError as exc:
        return str(exc)
    if not problems:
        return None
    problem = problems[0]
    at = f" at {problem.pointer}" if problem.pointer else ""
    return f"the run's inputs do not match the workflow's inputs schema{at}: {problem.message}"


def input_problems(schema: Any, inputs: Mapping[str, Any], *, every: bool = True) -> list[InputProblem]:
    """How `inputs` do not fit `schema` (all of them, or the best one when not `every`); [] when they fit.

    `InputsSchemaError` when the schema itself cannot be used."""
    if not isinstance(schema, Mapping):
        raise InputsSchemaError("the workflow's inputs schema must be a JSON object (a JSON Schema)")
    schema_json = json.dumps(schema, sort_keys=True)
    gate, explainer = _checkers(schema_json)
    instance = dict(inputs)
    if gate.is_valid(instance):
        return []
    if explainer is None:
        return [
            InputProblem(
                "",
                "they fail its anyOf/oneOf/allOf/not/if/$ref parts (which part is not worked out: that "
                "could take without bound); check them against the schema",
            )
        ]
    token = _LOOK.set(LookBudget())
    try:
        errors: Iterator[ValidationError] = explainer.iter_errors(instance)
        if not every:
            best = best_match(errors)
            return [] if best is None else [_problem(best)]
        return [_problem(error) for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])]
    except RegexTooSlow as exc:
        return [InputProblem("", f"which value does not fit is not worked out: {exc}")]
    finally:
        _LOOK.reset(token)


def _problem(error: ValidationError) -> InputProblem:
    return InputProblem("".join(f"/{part}" for part in error.absolute_path), error.message)


@lru_cache(maxsize=256)
def _checkers(schema_json: str) -> tuple[Any, jsonschema.Draft202012Validator | None]:
    """The Rust validator that decides, and the Python one that explains (None for a branching schema).

    Keyed by the schema's JSON text: the same workflow runs many times with one schema."""
    schema = json.loads(schema_json)
    for at, pattern in schema_patterns(schema):
        risk = backtracking_risk(pattern)
        if risk is not None:
            where = "/" + "/".join(str(part) for part in at)
            raise InputsSchemaError(
                f"the workflow's inputs schema cannot be checked: its regex {pattern!r} at {where} can take "
                f"exponential time to fail: {risk}; {HOW_TO_FIX}"
            )
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        gate = jsonschema_rs.Draft202012Validator(schema)
    except (jsonschema.SchemaError, jsonschema_rs.ValidationError, TypeError, ValueError) as exc:
        detail = exc.message if isinstance(exc, jsonschema.SchemaError) else str(exc).splitlines()[0]
        raise InputsSchemaError(
            f"the workflow's inputs schema is not a valid JSON Schema: {detail}"
        ) from None
    explainer = None if _branches(schema) else _Explainer(schema)
    return gate, explainer


def _branches(schema: Any) -> bool:
    """Whether a schema has a keyword whose failures the Python library explains branch by branch."""
    if isinstance(schema, Mapping):
        return any(key in _BRANCHING or _branches(value) for key, value in schema.items())
    if isinstance(schema, list):
        return any(_branches(item) for item in schema)
    return False


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """`uniqueItems` by hashing each item's canonical form (the library compares objects pair by pair)."""
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for item in instance:
        key = _canonical(item)
        if key in seen:
            shown = json.dumps(item, ensure_ascii=False, default=str)
            shown = shown if len(shown) <= 80 else shown[:79] + "…"
            yield ValidationError(f"the items are not unique: {shown} is there more than once")
            return
        seen.add(key)


def _canonical(value: Any) -> Any:
    """A hashable form equal for equal JSON values (1 and 1.0 alike, true and 1 not)."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, Mapping):
        return ("object", frozenset((key, _canonical(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return ("array", tuple(_canonical(item) for item in value))
    return ("other", repr(value))


# The look the explainer in progress runs its regexes within (`input_problems` sets it).
_LOOK: ContextVar[LookBudget | None] = ContextVar("phoneflow_inputs_look", default=None)


def _search(pattern: str, text: str) -> bool:
    """`re.search` as JSON Schema means it, within the current look's time."""
    look = _LOOK.get()
    return (look if look is not None else LookBudget()).search(pattern, text)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key
        for key in instance
        if key not in properties and not any(_search(pattern, key) for pattern in patterns)
    ]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        joined = ", ".join(repr(each) for each in sorted(extras))
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            shown = ", ".join(repr(each) for each in sorted(patterns))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {shown}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({joined} {verb} unexpected)")


_Explainer: Any = validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator,
    {
        "uniqueItems": _unique_items,
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)
