"""Turning `jsonschema` errors into problems a person can act on.

A raw error says "'txt' does not match ..." about a path; a problem says which node,
which param, what is allowed there and what was probably meant. The translation
looks at the failing keyword, the path and, for node parts, the node's kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from jsonschema.exceptions import ValidationError

from interpreter.graph import NODE_KINDS, OUTCOMES_BY_KIND
from interpreter.problems import Problem, did_you_mean, pointer

Path = Sequence[str | int]

_JSON_TYPES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}

# hints for top-level fields and node fields the schema requires or bounds
_FIELD_HINTS = {
    "schemaVersion": 'add "schemaVersion": 1',
    "name": 'add "name": a short title for people',
    "start": 'add "start": the id of the first node to run',
    "nodes": 'add "nodes": a list of steps such as {"id": "open", "kind": "action.launchApp", ...}',
    "id": "give the node an id: letters, digits, '_' and '-', starting with a letter",
    "kind": "give the node a kind: one of " + ", ".join(NODE_KINDS),
    "params": "add params: an object with the kind's parameters",
    "timeoutS": "timeoutS is the run's time cap in seconds: 1 to 600",
    "max": "retry.max counts extra attempts after the first: 0 to 10",
    "delayMs": "delayMs is the pause between attempts in milliseconds: 0 or more",
}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # shown escaped (a newline as \n), so messages stay one line


def json_type(value: Any) -> str:
    """The JSON type of a Python value, in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def short(value: Any, limit: int = 60) -> str:
    """A value written briefly for a message."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], value) if isinstance(value, str) else repr(value)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"'{text}'" if isinstance(value, str) else text


class _Context:
    """Where an error is: the path, the node (if inside one) and a name for the place."""

    def __init__(self, error: ValidationError, root: Any, prefix: Path) -> None:
        self.error = error
        self.path: list[str | int] = [*prefix, *error.absolute_path]
        self.kind: str | None = None
        if len(self.path) >= 2 and self.path[0] == "nodes" and isinstance(self.path[1], int):
            nodes = root.get("nodes") if isinstance(root, Mapping) else None
            node = nodes[self.path[1]] if isinstance(nodes, list) and self.path[1] < len(nodes) else None
            kind = node.get("kind") if isinstance(node, Mapping) else None
            self.kind = kind if isinstance(kind, str) and kind in OUTCOMES_BY_KIND else None

    @property
    def keyword_value(self) -> Any:
        """The failing keyword's value in the schema (`jsonschema` types it loosely)."""
        value: Any = self.error.validator_value
        return value

    @property
    def pointer(self) -> str:
        return pointer(self.path)

    @property
    def in_node(self) -> bool:
        return len(self.path) >= 2 and self.path[0] == "nodes"

    @property
    def inner(self) -> list[str | int]:
        """The path below the node (or the whole path outside nodes)."""
        return self.path[2:] if self.in_node else self.path

    @property
    def field(self) -> str:
        """A name for the failing place, such as `timeoutS`, `params.text` or `targetPackages[0]`."""
        words = ""
        for part in self.inner:
            words += f"[{part}]" if isinstance(part, int) else (f".{part}" if words else str(part))
        if self.in_node and self.kind and self.inner[:1] == ["params"]:
            return f"{self.kind} {words}" if words else f"{self.kind} params"
        return words or ("the node" if self.in_node else "the workflow")

    @property
    def object_name(self) -> str:
        """A name for the object whose members are checked (for required / unknown fields)."""
        inner = self.inner
        if self.in_node and inner == ["params"]:
            return self.kind or "params"
        if self.in_node and not inner:
            return f"{self.kind} node" if self.kind else "the node"
        if not inner:
            return "the workflow"
        return self.field


def _required(ctx: _Context) -> Iterator[Problem]:
    match = re.match(r"^'(.*)' is a required property$", ctx.error.message)
    name = match.group(1) if match else str(ctx.error.message)
    what = "param" if ctx.inner == ["params"] else "field"
    description = ""
    properties = ctx.error.schema.get("properties", {}) if isinstance(ctx.error.schema, Mapping) else {}
    if isinstance(properties.get(name), Mapping):
        description = str(properties[name].get("description", ""))
    hint = _FIELD_HINTS.get(name) if not ctx.inner else None
    if hint is None:
        prefix = "params." if what == "param" else ""
        hint = f"add {prefix}{name}" + (f" ({description.rstrip('.')})" if description else "")
    yield Problem(ctx.pointer, f"{ctx.object_name} needs {what} '{name}'", hint)


def _additional(ctx: _Context) -> Iterator[Problem]:
    schema = ctx.error.schema if isinstance(ctx.error.schema, Mapping) else {}
    allowed = list(schema.get("properties", {}))
    instance = ctx.error.instance if isinstance(ctx.error.instance, Mapping) else {}
    extras = [key for key in instance if key not in allowed]
    is_params = ctx.inner == ["params"]
    for key in extras:
        where = pointer([*ctx.path, key])
        if is_params and not allowed:
            yield Problem(where, f"{ctx.object_name} takes no params, but has '{key}'", f"remove '{key}'")
            continue
        noun = "param" if is_params else "field"
        message = f"{ctx.object_name} has no {noun} '{key}'{did_you_mean(str(key), allowed)}"
        yield Problem(where, message, f"remove it or use one of: {', '.join(allowed)}")


def _enum(ctx: _Context) -> Iterator[Problem]:
    options = [str(o) for o in ctx.keyword_value]
    value = ctx.error.instance
    guess = did_you_mean(value, options) if isinstance(value, str) else ""
    if ctx.inner == ["kind"]:
        yield Problem(
            ctx.pointer, f"unknown node kind {short(value)}{guess}", f"use one of: {', '.join(options)}"
        )
        return
    yield Problem(
        ctx.pointer,
        f"{ctx.field} is {short(value)}, not one of the allowed values{guess}",
        f"use one of: {', '.join(options)}",
    )


def _const(ctx: _Context) -> Iterator[Problem]:
    expected = ctx.keyword_value
    if ctx.path == ["schemaVersion"]:
        yield Problem(
            ctx.pointer,
            f"schemaVersion is {short(ctx.error.instance)}; this is the v1 format",
            '"schemaVersion": 1',
        )
        return
    yield Problem(ctx.pointer, f"{ctx.field} must be {short(expected)}", f"set it to {short(expected)}")


def _type(ctx: _Context) -> Iterator[Problem]:
    expected = ctx.keyword_value
    names = [expected] if isinstance(expected, str) else list(expected)
    words = " or ".join(_JSON_TYPES.get(str(n), str(n)) for n in names)
    message = f"{ctx.field} must be {words}, not {json_type(ctx.error.instance)}"
    if not ctx.path:
        message = f"a workflow definition must be a JSON object, not {json_type(ctx.error.instance)}"
    hint = (
        f"write {ctx.field} as {words}" if ctx.path else 'start from {"schemaVersion": 1, "name": ..., ...}'
    )
    if ctx.inner == ["next"]:
        hint = 'write next as a node id or a map such as {"ok": "save", "failed": "alert"}'
    yield Problem(ctx.pointer, message, hint)


def _pattern(ctx: _Context) -> Iterator[Problem]:
    value = ctx.error.instance
    description = (
        str(ctx.error.schema.get("description", "")) if isinstance(ctx.error.schema, Mapping) else ""
    )
    last = ctx.path[-1] if ctx.path else ""
    if last == "package" or ctx.path[:1] == ["targetPackages"]:
        if isinstance(value, str) and "{{" in value:
            return  # reported by the package checks as "literals, never templates"
        yield Problem(
            ctx.pointer,
            f"{short(value)} is not an Android package name",
            "write it like com.example.shop: letters, digits and '_', with at least one dot",
        )
        return
    if last == "url":
        yield Problem(
            ctx.pointer,
            f"url {short(value)} is not an http(s) address",
            "start it with https:// or http://, or with a template such as {{inputs.httpBase}}",
        )
        return
    if last in ("saveAs", "name") and ctx.in_node:
        yield Problem(
            ctx.pointer,
            f"{short(value)} is not a variable name",
            "use letters, digits and '_', starting with a letter or '_' (at most 64)",
        )
        return
    is_id = last in ("id", "start") or ctx.inner[:1] == ["next"]
    if is_id:
        yield Problem(
            ctx.pointer,
            f"{short(value)} is not a valid node id",
            "use letters, digits, '_' and '-', starting with a letter or '_' (at most 64 characters)",
        )
        return
    yield Problem(
        ctx.pointer,
        f"{ctx.field} {short(value)} has the wrong form",
        description or f"it must match {ctx.keyword_value}",
    )


def _bound(ctx: _Context) -> Iterator[Problem]:
    keyword, limit, value = ctx.error.validator, ctx.keyword_value, ctx.error.instance
    last = ctx.path[-1] if ctx.path else ""
    if keyword == "maximum" and last == "timeoutS" and "params" in ctx.path:
        yield Problem(
            ctx.pointer,
            f"{ctx.field} is {value}: an approval waits at most {limit} s",
            f"set timeoutS to {limit} or less, or to 0 to wait without a time limit",
        )
        return
    if keyword == "maximum" and last == "timeoutS":
        yield Problem(
            ctx.pointer,
            f"{ctx.field} is {value}: a run may last at most {limit} s",
            f"set timeoutS to {limit} or less",
        )
        return
    if last == "max" and ctx.inner[:1] == ["retry"]:
        yield Problem(
            ctx.pointer,
            f"retry.max is {value}: allowed are 0 to 10 extra attempts",
            "set retry.max between 0 and 10",
        )
        return
    words = {
        "minimum": "less than the minimum",
        "maximum": "more than the maximum",
        "exclusiveMinimum": "not above",
        "exclusiveMaximum": "not below",
    }[str(keyword)]
    bound = "at least" if keyword in ("minimum", "exclusiveMinimum") else "at most"
    hint = f"use a value of {bound} {limit}"
    if ctx.inner[:1] == ["retry"] or not ctx.in_node and len(ctx.path) == 1:
        hint = _FIELD_HINTS.get(str(last), hint)  # the hints of top-level and retry fields
    yield Problem(
        ctx.pointer,
        f"{ctx.field} is {value}, {words} {limit}",
        hint,
    )


def _length(ctx: _Context) -> Iterator[Problem]:
    keyword, limit = ctx.error.validator, ctx.keyword_value
    if keyword == "minLength":
        yield Problem(ctx.pointer, f"{ctx.field} is empty", f"write at least {limit} character(s)")
    elif keyword == "maxLength":
        yield Problem(ctx.pointer, f"{ctx.field} is longer than {limit} characters", "shorten it")
    elif keyword == "minItems":
        what = "at least one node" if ctx.path == ["nodes"] else f"at least {limit} item(s)"
        yield Problem(ctx.pointer, f"{ctx.field} needs {what}", f"add {what} to {ctx.field}")
    elif keyword == "maxItems":
        yield Problem(ctx.pointer, f"{ctx.field} has more than {limit} items", f"keep at most {limit}")
    elif keyword == "minProperties":
        yield Problem(
            ctx.pointer,
            f"{ctx.field} is empty",
            'write a node id, or a map such as {"ok": "save"}; leave next out to end the run here',
        )
    else:
        yield Problem(ctx.pointer, ctx.error.message, f"see {ctx.field} in the workflow schema")


def _unique(ctx: _Context) -> Iterator[Problem]:
    yield Problem(ctx.pointer, f"{ctx.field} lists the same entry twice", "remove the repeated entry")


def _property_names(ctx: _Context) -> Iterator[Problem]:
    key = ctx.error.instance
    where = pointer([*ctx.path, str(key)])
    if ctx.inner == ["next"]:
        outcomes = OUTCOMES_BY_KIND.get(ctx.kind or "", ())
        allowed = " or ".join(outcomes)
        yield Problem(
            where,
            f"{short(key)} is not an outcome of {ctx.kind or 'this node'}{did_you_mean(str(key), outcomes)}",
            f"name the outcomes {allowed}" if outcomes else "remove next",
        )
        return
    yield Problem(
        where,
        f"{short(key)} is not allowed as a key of {ctx.field}",
        "HTTP header names use letters, digits and - only" if ctx.path[-1:] == ["headers"] else "rename it",
    )


def _one_of(ctx: _Context) -> Iterator[Problem]:
    options = ctx.keyword_value
    keys = [o["required"][0] for o in options if isinstance(o, Mapping) and len(o.get("required", [])) == 1]
    instance = ctx.error.instance
    if len(keys) == len(options) and isinstance(instance, Mapping):
        present = [k for k in keys if k in instance]
        name = ctx.object_name
        if present:
            message = f"{name} has {' and '.join(present)}: it takes exactly one of them"
            hint = f"keep one of {', '.join(present)} and remove the others"
        else:
            message = f"{name} needs one of {', '.join(keys)}"
            hint = f"add exactly one of {', '.join(keys)}"
        yield Problem(ctx.pointer, message, hint)
        return
    yield Problem(ctx.pointer, f"{ctx.field}: {ctx.error.message}", "see the workflow schema")


def _any_of(ctx: _Context) -> Iterator[Problem]:
    options = ctx.keyword_value
    keys = [o["required"][0] for o in options if isinstance(o, Mapping) and len(o.get("required", [])) == 1]
    if keys and len(keys) == len(options):
        yield Problem(
            ctx.pointer,
            f"{ctx.object_name} needs at least one of {', '.join(keys)}",
            f"add one of {', '.join(keys)}",
        )
        return
    yield Problem(ctx.pointer, f"{ctx.field}: {ctx.error.message}", "see the workflow schema")


def _forbidden(ctx: _Context) -> Iterator[Problem]:
    if ctx.inner == ["next"]:
        yield Problem(
            ctx.pointer,
            f"{ctx.kind or 'this node'} ends the run: it has no next",
            "remove next from this node",
        )
        return
    yield Problem(ctx.pointer, f"{ctx.field} is not allowed here", f"remove {ctx.field}")


_HANDLERS: dict[str | None, Callable[[_Context], Iterator[Problem]]] = {
    "required": _required,
    "additionalProperties": _additional,
    "enum": _enum,
    "const": _const,
    "type": _type,
    "pattern": _pattern,
    "minimum": _bound,
    "maximum": _bound,
    "exclusiveMinimum": _bound,
    "exclusiveMaximum": _bound,
    "minLength": _length,
    "maxLength": _length,
    "minItems": _length,
    "maxItems": _length,
    "minProperties": _length,
    "uniqueItems": _unique,
    "oneOf": _one_of,
    "anyOf": _any_of,
    "not": _forbidden,
    None: _forbidden,
}


def translate(error: ValidationError, root: Any, prefix: Path = ()) -> list[Problem]:
    """Readable problems for one `jsonschema` error found at `prefix` + the error's path."""
    ctx = _Context(error, root, prefix)
    # propertyNames errors carry the key as the instance and the object's path
    if "propertyNames" in error.relative_schema_path:
        return list(_property_names(ctx))
    handler = _HANDLERS.get(error.validator)  # type: ignore[arg-type]
    if handler is None:
        return [Problem(ctx.pointer, f"{ctx.field}: {error.message}", "see the workflow schema")]
    return list(handler(ctx))
