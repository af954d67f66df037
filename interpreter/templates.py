"""`{{ path }}` templates in node params.

Roots: `inputs`, `vars`, `nodes` (`nodes.ID.output.field`), `run`, `device`.
A string that is exactly one template takes the value's own type (a number stays a
number in an HTTP body); templates inside longer strings are written as text (JSON
for objects and lists). A path that does not resolve raises `TemplateError` naming
the path: a template never becomes an empty string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

TEMPLATE_ROOTS = ("inputs", "vars", "nodes", "run", "device")

_TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
_BRACKETS = re.compile(r"\[\s*(\d+)\s*\]")


class TemplateError(Exception):
    """A template path did not resolve or is malformed; `path` names it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def references(value: Any) -> Iterator[str]:
    """Every template path in `value` (strings inside dicts and lists too), as written, in order.

    Walks with an explicit stack, so that no nesting depth can overflow Python's recursion.
    """
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "{{" in item:
                for match in _TEMPLATE.finditer(item):
                    yield match.group(1)
        elif isinstance(item, Mapping):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def check_path(path: str) -> str | None:
    """Why `path` cannot be a template path, or None when its form is fine."""
    if not _PATH.fullmatch(path):  # fullmatch: `$` alone would let a trailing newline through
        dotted = _BRACKETS.sub(r".\1", path)
        if dotted != path and _PATH.fullmatch(dotted):
            # A list item written as in CEL or JavaScript: templates count items with a dot.
            how = f"a list's item is written with a dot, {{{{{dotted}}}}}"
            return f"'{{{{{path}}}}}' is not a template path: {how}"
        return (
            f"'{{{{{path}}}}}' is not a template path: write {{{{root.name}}}} with letters, digits and dots"
        )
    root = path.split(".", 1)[0]
    if root not in TEMPLATE_ROOTS:
        return f"unknown template root '{root}' in '{{{{{path}}}}}'"
    return None


def resolve(path: str, scope: Mapping[str, Any]) -> Any:
    """The value at a dotted `path` in `scope`, or `TemplateError`."""
    problem = check_path(path)
    if problem:
        raise TemplateError(path, problem)
    current: Any = scope
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise TemplateError(path, f"template '{{{{{path}}}}}' does not resolve")
    # A null is a value (an approval that timed out has no note): it renders as the JSON word.
    return current


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"  # the JSON word, as inside objects and lists (never Python's "None")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


# The most a rendered value may hold, counted as its JSON's characters. A template may repeat a
# value (`"{{vars.x}}{{vars.x}}"`, or a list of two of it) and a step may store the result back: in a
# loop the value doubled each round, and 29 rounds took 2.7 GB. A megabyte is far beyond any text a
# phone types or an HTTP body a workflow sends.
MAX_VALUE_CHARS = 1_000_000


def json_size(value: Any, limit: int) -> int:
    """About how many characters `value` takes as JSON, counted only up to just past `limit` (a value
    that shares one list many times over is not walked whole)."""
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, Mapping):
            total += 2 + len(item)
            for key, member in item.items():
                total += len(str(key)) + 3
                pending.append(member)
        elif isinstance(item, (list, tuple)):
            total += 2 + len(item)
            pending.extend(item)
        else:
            total += len(_as_text(item))
        if total > limit:
            return limit + 1
    return total


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """`value` with every template replaced; dicts and lists are rendered deeply. A result larger than
    `MAX_VALUE_CHARS` raises `TemplateError`."""
    rendered = _render(value, scope)
    if rendered is not value and json_size(rendered, MAX_VALUE_CHARS) > MAX_VALUE_CHARS:
        raise TemplateError(
            "",
            f"the params' templates make a value of more than {MAX_VALUE_CHARS:,} characters; a template "
            'that repeats a value ("{{vars.x}}{{vars.x}}") stored back grows it without bound: keep '
            "values smaller",
        )
    return rendered


def _render(value: Any, scope: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        if "{{" not in value:
            return value
        whole = _TEMPLATE.fullmatch(value.strip())
        if whole and value.strip() == value:
            return resolve(whole.group(1), scope)
        return _TEMPLATE.sub(lambda m: _as_text(resolve(m.group(1), scope)), value)
    if isinstance(value, Mapping):
        return {key: _render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, scope) for item in value]
    return value


def render_text(value: Any, scope: Mapping[str, Any]) -> str:
    """Render and write the result as text (for params that must be strings)."""
    return _as_text(render(value, scope))
