"""Reference checks of validation: templates, CEL expressions and regexes in node params.

Each check takes the whole definition (any JSON) and yields problems; `validation.validate`
runs them with the others. Templates and expressions may name `inputs`, `vars`, `nodes`,
`run` and `device`; `nodes.X` must name an existing node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from interpreter.denylist import Denylist
from interpreter.expressions import MAX_EXPRESSION_LENGTH, ExpressionError, compile_expression, root_names
from interpreter.graph import iter_nodes, node_index
from interpreter.matcher import compile_pattern
from interpreter.problems import Problem, did_you_mean, pointer
from interpreter.templates import TEMPLATE_ROOTS, check_path, references

Path = tuple[str | int, ...]
# CEL names that are not variables: type names used in `type(x) == string` and the like
_CEL_TYPE_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type", "dyn"}
)
# macros that bind their own loop variables: `list.exists(x, x > 1)`, `m.transformList(i, v, ...)`
_CEL_BINDING = re.compile(
    r"\.\s*(?:all|exists|exists_one|existsOne|map|filter|transformList|transformMap|transformMapEntry)"
    r"\s*\(\s*([A-Za-z_]\w*)\s*,(?:\s*([A-Za-z_]\w*)\s*,)?"
)
_CEL_STRING = re.compile(r"'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"", re.S)
_CEL_NODE_REF = re.compile(r"\bnodes\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*(['\"])([^'\"]*)\2\s*\])")
_TEMPLATE_HINT = "use {{inputs.x}}, {{vars.x}}, {{nodes.ID.output.field}}, {{run.id}} or {{device.serial}}"


def _strings(value: Any, where: Path) -> Iterator[tuple[Callable[[], Path], str]]:
    """Every string inside `value`, with a function giving its path.

    Iterative, and paths are linked to their parents and built only when asked for, so
    that neither deep nesting nor wide values cost more than one pass.
    """
    Link = tuple[str | int, Any] | None  # (last key, parent link)

    def path_of(link: Link) -> Callable[[], Path]:
        def build() -> Path:
            parts: list[str | int] = []
            current = link
            while current is not None:
                parts.append(current[0])
                current = current[1]
            return (*where, *reversed(parts))

        return build

    stack: list[tuple[Link, Any]] = [(None, value)]
    while stack:
        link, item = stack.pop()
        if isinstance(item, str):
            yield path_of(link), item
        elif isinstance(item, Mapping):
            stack.extend(((str(k), link), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend(((i, link), v) for i, v in reversed(list(enumerate(item))))


def _variables_set(definition: Any) -> set[str]:
    names: set[str] = set()
    for _, node in iter_nodes(definition):
        params = node.get("params")
        if not isinstance(params, Mapping):
            continue
        key = {"control.setVar": "name", "action.readText": "saveAs"}.get(str(node.get("kind")))
        if key and isinstance(params.get(key), str):
            names.add(params[key])
    return names


def _declared_inputs(definition: Any) -> set[str] | None:
    """The input names the `inputs` schema declares, or None when it does not list them."""
    inputs = definition.get("inputs") if isinstance(definition, Mapping) else None
    properties = inputs.get("properties") if isinstance(inputs, Mapping) else None
    return {str(k) for k in properties} if isinstance(properties, Mapping) else None


def check_templates(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """Template paths in params have a known root; `nodes.X` names a node; vars and inputs exist."""
    ids = node_index(definition)
    variables = _variables_set(definition)
    inputs = _declared_inputs(definition)
    for position, node in iter_nodes(definition):
        for where, text in _strings(node.get("params"), ("nodes", position, "params")):
            if "{{" not in text:
                continue
            at = pointer(where())
            for path in references(text):
                reason = check_path(path)
                if reason:
                    yield Problem(at, reason, _TEMPLATE_HINT)
                    continue
                parts = path.split(".")
                if parts[0] == "nodes" and len(parts) > 1 and parts[1] not in ids:
                    yield Problem(
                        at,
                        f"template '{{{{{path}}}}}' names no node '{parts[1]}'{did_you_mean(parts[1], ids)}",
                        "write {{nodes.ID.output.field}} with the id of an existing node",
                    )
                elif parts[0] == "vars" and len(parts) > 1 and parts[1] not in variables:
                    yield Problem(
                        at,
                        f"template '{{{{{path}}}}}': no control.setVar or readText saveAs sets "
                        f"vars.{parts[1]}{did_you_mean(parts[1], variables)}",
                        f"set vars.{parts[1]} in an earlier node, or fix the name",
                        "warning",
                    )
                elif (
                    parts[0] == "inputs" and len(parts) > 1 and inputs is not None and parts[1] not in inputs
                ):
                    yield Problem(
                        at,
                        f"template '{{{{{path}}}}}': the inputs schema does not declare "
                        f"'{parts[1]}'{did_you_mean(parts[1], inputs)}",
                        f"add '{parts[1]}' to inputs.properties, or fix the name",
                        "warning",
                    )
            leftover = re.sub(r"\{\{\s*[^{}]*?\s*\}\}", "", text)
            if "{{" in leftover:
                yield Problem(
                    at,
                    "'{{' without a matching '}}': this text is used as it is",
                    "close the template with }}, as in {{inputs.order}}",
                    "warning",
                )


_CEL_ERROR = re.compile(r"<input>:(\d+):(\d+): ([^\n]*)")


def _cel_reason(error: str) -> str:
    """The parser's first complaint, without its list of every token it expected."""
    match = _CEL_ERROR.search(error)
    if not match:
        return error.splitlines()[0] if error else "unknown error"
    line, column, reason = match.groups()
    reason = reason.split(" expecting {", 1)[0].split(": |", 1)[0].strip().rstrip(":")
    return f"{reason[0].lower()}{reason[1:]} (line {line}, column {column})" if reason else f"line {line}"


def _cel_bound_names(expr: str) -> set[str]:
    names: set[str] = set()
    for match in _CEL_BINDING.finditer(expr):
        names.update(name for name in match.groups() if name)
    return names


def check_expressions(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """`control.if` expressions compile as CEL and use only known names and existing nodes."""
    ids = node_index(definition)
    for position, node in iter_nodes(definition):
        params = node.get("params")
        if node.get("kind") == "control.if" and params is None:
            yield Problem(
                pointer(["nodes", position]),
                "control.if has no params, so it has nothing to decide on",
                'add "params": {"expr": "vars.n < 3"} (a CEL condition) or {"textVisible": "Saved"}',
            )
            continue
        expr = (
            params.get("expr") if isinstance(params, Mapping) and node.get("kind") == "control.if" else None
        )
        if isinstance(expr, str) and expr and not expr.strip():
            yield Problem(
                pointer(["nodes", position, "params", "expr"]),
                "the expression is only whitespace",
                "write a CEL condition such as inputs.count > 3",
            )
            continue
        if not isinstance(expr, str) or not expr.strip() or len(expr) > MAX_EXPRESSION_LENGTH:
            continue  # missing, empty or too long: the schema reports it (and a huge one could crash CEL)
        at = pointer(["nodes", position, "params", "expr"])
        try:
            compile_expression(expr)
        except ExpressionError as exc:
            yield Problem(
                at,
                f"the expression does not compile: {_cel_reason(str(exc))}",
                "write a CEL expression such as inputs.count > 3 && vars.done == false",
            )
            continue
        allowed = set(TEMPLATE_ROOTS) | _CEL_TYPE_NAMES | _cel_bound_names(expr)
        for name in root_names(expr):
            bare = name.lstrip(".")
            if bare not in allowed:
                yield Problem(
                    at,
                    f"the expression uses '{bare}', which is not a known name"
                    f"{did_you_mean(bare, TEMPLATE_ROOTS)}",
                    "use inputs, vars, nodes, run and device (as in inputs.count > 3)",
                )
        for match in _CEL_NODE_REF.finditer(_CEL_STRING.sub('""', expr)):
            node_id = match.group(1) or match.group(3)
            if node_id not in ids:
                yield Problem(
                    at,
                    f"the expression names no node '{node_id}'{did_you_mean(node_id, ids)}",
                    "write nodes.ID.output.field with the id of an existing node",
                )


def check_regexes(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """Regexes (`tapByText` with `match: regex`, selector `textMatches`) compile, unless templated."""
    for position, node in iter_nodes(definition):
        params = node.get("params")
        if not isinstance(params, Mapping):
            continue
        found: list[tuple[Path, Any]] = []
        if node.get("kind") == "action.tapByText" and params.get("match") == "regex":
            found.append((("nodes", position, "params", "text"), params.get("text")))
        selector = params.get("selector")
        if isinstance(selector, Mapping):
            where = ("nodes", position, "params", "selector", "textMatches")
            found.append((where, selector.get("textMatches")))
        for at, pattern in found:
            if not isinstance(pattern, str) or "{{" in pattern:
                continue  # a template is only known at run time; the engine reports a bad one then
            try:
                compile_pattern(pattern)
            except (ValueError, RecursionError, OverflowError) as exc:
                yield Problem(pointer(at), str(exc), "fix the regular expression (Python re syntax)")
