"""`validate(definition, denylist)`: every problem of a workflow definition, never an exception.

Checks, each reported with a JSON pointer, a message and a fix hint:
- the JSON Schema (`interpreter/schemas/workflow.schema.json`), errors made readable;
- the graph: unique ids, `start` and every `next` target exist, unreachable nodes (warning);
- references: template roots, `nodes.X` in templates and CEL, CEL compiles with known names;
- packages: literals (never templates) and not on the denylist;
- `inputs` is itself a valid JSON Schema describing an object.

Every check reads the definition defensively, so a definition broken in one place still
gets all its other problems reported, and a check that meets something it cannot handle
(a structure nested too deeply) reports that instead of raising.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx

from interpreter.denylist import Denylist, denied_message
from interpreter.graph import (
    OUTCOMES_BY_KIND,
    PACKAGE_PARAM_KINDS,
    iter_nodes,
    next_targets,
    node_index,
    reachable,
)
from interpreter.http_step import header_value_problem
from interpreter.problems import (
    Problem,
    did_you_mean,
    errors_only,
    in_document_order,
    pointer,
    suggestion_budget,
)
from interpreter.reference_checks import check_expressions, check_regexes, check_templates
from interpreter.safe_regex import HOW_TO_FIX, backtracking_risk, schema_patterns
from interpreter.schema import (
    MAX_NODES,
    detailed_node_validator,
    detailed_top_validator,
    fast_node_validator,
    fast_workflow_validator,
    inputs_metaschema_validator,
)
from interpreter.schema_errors import translate
from interpreter.templates import references

__all__ = ["Problem", "errors_only", "validate"]

Path = tuple[str | int, ...]
Check = Callable[[Any, "Denylist | None"], Iterable[Problem]]

_NODE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_MAX_MESSAGE = 300
_MAX_SUGGESTIONS = 50  # "did you mean" for the first 50 unknown words: enough for a person


def validate(definition: Any, denylist: Denylist | None = None) -> list[Problem]:
    """Every problem of `definition` (errors and warnings), in document order. Never raises."""
    problems: list[Problem] = []
    with suggestion_budget(_MAX_SUGGESTIONS):
        for check in _CHECKS:
            problems.extend(_guarded(check, definition, denylist))
    return in_document_order(problems)


def _guarded(check: Check, definition: Any, denylist: Denylist | None) -> list[Problem]:
    found: list[Problem] = []
    try:
        for problem in check(definition, denylist):
            found.append(_clipped(problem))
    except RecursionError:
        found.append(
            Problem(
                "",
                "the definition is nested too deeply to check",
                "flatten the deeply nested values (params, body, inputs)",
            )
        )
    except Exception as exc:  # validation must never raise: say so instead, and keep the other checks
        found.append(
            Problem(
                "",
                f"internal error while checking the definition ({check.__name__}: "
                f"{type(exc).__name__}: {exc})"[:_MAX_MESSAGE],
                "this is a bug in phoneflow; please report it with the definition",
            )
        )
    return found


def _encodable(text: str) -> str:
    # JSON text may hold lone surrogates ("\ud800") that no UTF-8 output can carry: they are
    # written as escapes, so that printing a problem or sending it as JSON cannot fail
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _clipped(problem: Problem) -> Problem:
    """The problem with a message of bounded length, every field safe to write as UTF-8."""
    message = _encodable(problem.message)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    fields = (_encodable(problem.pointer), message, _encodable(problem.hint))
    if fields == (problem.pointer, problem.message, problem.hint):
        return problem
    return Problem(*fields, severity=problem.severity)


# --- schema -------------------------------------------------------------------------------


def _fast_valid(validator: Any, instance: Any) -> bool | None:
    """The Rust gate's answer, or None when it cannot take the instance (too deep, not JSON)."""
    try:
        return bool(validator.is_valid(instance))
    except Exception:
        return None


def check_schema(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """The JSON Schema, with `jsonschema`'s errors translated into readable problems."""
    gate = _fast_valid(fast_workflow_validator(), definition)
    if gate:
        return
    found = False
    for error in detailed_top_validator().iter_errors(definition):
        found = True
        yield from translate(error, definition)
    for position, node in _all_nodes(definition):
        if position >= MAX_NODES:
            break  # the schema's maxItems error covers the rest; checking them all would only cost time
        if _fast_valid(fast_node_validator(), node):
            continue
        kind = node.get("kind") if isinstance(node, Mapping) else None
        for error in detailed_node_validator(kind).iter_errors(node):
            found = True
            yield from translate(error, definition, ("nodes", position))
    if gate is False and not found:
        # the two validators disagree (regex dialects differ at the edges): use the gate's own words
        for error in fast_workflow_validator().iter_errors(definition):
            yield Problem(
                pointer(error.instance_path),
                str(error.message),
                "see the workflow schema at /api/v1/schemas/workflow.json",
            )


def _all_nodes(definition: Any) -> Iterator[tuple[int, Any]]:
    nodes = definition.get("nodes") if isinstance(definition, Mapping) else None
    if isinstance(nodes, list):
        yield from enumerate(nodes)


# --- graph --------------------------------------------------------------------------------


def check_ids(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """Every node id is used once."""
    first: dict[str, int] = {}
    for position, node in iter_nodes(definition):
        node_id = node.get("id")
        if not isinstance(node_id, str):
            continue
        if node_id in first:
            yield Problem(
                pointer(["nodes", position, "id"]),
                f"node id '{node_id}' is already used by /nodes/{first[node_id]}",
                "give every node its own id",
            )
        else:
            first[node_id] = position


def _missing_target(where: Path, target: str, ids: Mapping[str, int], what: str) -> Problem:
    return Problem(
        pointer(where),
        f"{what}no node '{target}'{did_you_mean(target, ids)}",
        f"use the id of an existing node, or add a node with id '{target}'",
    )


def check_edges(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """`start` and every `next` target name an existing node."""
    if not isinstance(definition, Mapping) or not isinstance(definition.get("nodes"), list):
        return
    ids = node_index(definition)
    start = definition.get("start")
    if isinstance(start, str) and _NODE_ID.fullmatch(start) and start not in ids:
        yield _missing_target(("start",), start, ids, "start names ")
    for position, node in iter_nodes(definition):
        if node.get("kind") == "control.fail":
            continue  # the schema says it has no next at all
        nxt = node.get("next")
        targets: list[tuple[Path, Any]] = []
        if isinstance(nxt, str):
            targets.append((("nodes", position, "next"), nxt))
        elif isinstance(nxt, Mapping):
            targets.extend((("nodes", position, "next", str(key)), value) for key, value in nxt.items())
        for where, target in targets:
            if isinstance(target, str) and _NODE_ID.fullmatch(target) and target not in ids:
                yield _missing_target(where, target, ids, "")


def check_reachable(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """Nodes that no path from `start` reaches (warnings: they never run)."""
    ids = node_index(definition)
    start = definition.get("start") if isinstance(definition, Mapping) else None
    if not isinstance(start, str) or start not in ids:
        return
    seen = reachable(definition)
    for node_id, position in ids.items():
        if node_id not in seen:
            yield Problem(
                pointer(["nodes", position]),
                f"node '{node_id}' is never reached from start '{start}'",
                "link it from another node's next, or remove it",
                "warning",
            )


# --- packages -----------------------------------------------------------------------------


def _package_fields(definition: Any) -> Iterator[tuple[Path, str]]:
    packages = definition.get("targetPackages") if isinstance(definition, Mapping) else None
    if isinstance(packages, list):
        for i, package in enumerate(packages):
            if isinstance(package, str):
                yield ("targetPackages", i), package
    for position, node in iter_nodes(definition):
        params = node.get("params")
        kind = node.get("kind")
        if isinstance(params, Mapping) and isinstance(kind, str) and kind in PACKAGE_PARAM_KINDS:
            package = params.get("package")
            if isinstance(package, str):
                yield ("nodes", position, "params", "package"), package


def denied_packages(definition: Any, denylist: Denylist) -> Iterator[tuple[str, str, str]]:
    """`(pointer, package, entry)` for every literal package field that `denylist` denies."""
    for where, package in _package_fields(definition):
        entry = denylist.match(package) if "{{" not in package else None
        if entry is not None:
            yield pointer(where), package, entry


def check_packages(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """Package fields are literal names, and none is on the denylist."""
    for where, package in _package_fields(definition):
        if "{{" in package:
            yield Problem(
                pointer(where),
                f"package fields are literals, never templates: '{package}'",
                "write the package name itself, such as com.example.shop, so that validation "
                "can check which app the workflow touches",
            )
            continue
        entry = denylist.match(package) if denylist is not None else None
        if entry is not None:
            matched = "it is listed" if entry == package else f"it matches '{entry}'"
            yield Problem(
                pointer(where),
                denied_message(package),
                f"{matched} on the package denylist: remove this app from the workflow",
            )


def check_target_packages(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """Apps launched but not declared in `targetPackages` (warning)."""
    packages = definition.get("targetPackages") if isinstance(definition, Mapping) else None
    if not isinstance(packages, list) or not packages:
        return
    for where, package in _package_fields(definition):
        if where[0] == "nodes" and "{{" not in package and package not in packages:
            yield Problem(
                pointer(where),
                f"{package} is not listed in targetPackages",
                "add it to targetPackages so that people see which apps the workflow touches",
                "warning",
            )


# --- inputs and limits --------------------------------------------------------------------


def check_inputs(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """`inputs` is a draft 2020-12 JSON Schema that describes an object."""
    inputs = definition.get("inputs") if isinstance(definition, Mapping) else None
    if not isinstance(inputs, Mapping):
        return  # absent, or the schema reports its type
    hint = 'inputs describes the run\'s inputs as a JSON Schema, e.g. {"type": "object", "properties": {...}}'
    found = False
    for error in inputs_metaschema_validator().iter_errors(inputs):
        found = True
        yield Problem(
            pointer(["inputs", *error.absolute_path]),
            f"inputs is not a valid JSON Schema: {error.message}",
            hint,
        )
    for at, pattern in schema_patterns(dict(inputs)):
        risk = backtracking_risk(pattern)
        if risk is not None:
            yield Problem(
                pointer(["inputs", *at]),
                f"the regex {pattern!r} can take exponential time to fail: {risk}",
                HOW_TO_FIX,
            )
    declared = inputs.get("type")
    if (
        not found
        and declared is not None
        and declared != "object"
        and not (isinstance(declared, list) and "object" in declared)
    ):
        yield Problem(
            "/inputs/type",
            f"inputs describes {declared!r}, but a run's inputs are an object",
            'set "type": "object" and list the inputs under "properties"',
        )


def _possible_outcomes(node: Mapping[str, Any]) -> set[str] | None:
    """The outcomes a node can end with, or None when it may also end the run (a failure with no
    way onward is read as that: only kinds that cannot fail give a set)."""
    kind = node.get("kind")
    raw = node.get("params")
    params: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if node.get("enabled") is False:
        return {"ok"}
    if kind == "action.wait":
        return {"ok"}
    if kind == "control.setVar" and not list(references(params.get("value"))):
        return {"ok"}
    if kind == "control.if" and "textVisible" in params and "expr" not in params:
        return {"true", "false"}
    if kind in ("control.approval",):
        return {"approved", "rejected"}
    if isinstance(kind, str) and kind.startswith("action.") and kind != "action.wait":
        return {"ok", "failed"}
    return None


def check_endless_loops(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """A loop the run can never leave (warning): every outcome of every step in it leads back into it."""
    ids = node_index(definition)
    if not ids:
        return
    nodes = definition["nodes"]
    edges: dict[str, set[str]] = {}
    for node_id, position in ids.items():
        node = nodes[position]
        outcomes = _possible_outcomes(node)
        targets = next_targets(node)
        if outcomes is None or any(targets.get(outcome) not in ids for outcome in outcomes):
            continue  # it can end the run
        edges[node_id] = {targets[outcome] for outcome in outcomes}
    # The steps that cannot reach a way out, found from the ways out backwards (each step and edge
    # once: removing one step a pass over all of them took 13 s for 16,000 steps, on the server).
    trapped = set(edges)
    into: dict[str, list[str]] = {}
    for node_id, leads_to in edges.items():
        for target in leads_to:
            into.setdefault(target, []).append(node_id)
    leaving = [node_id for node_id, leads_to in edges.items() if not leads_to <= trapped]
    while leaving:
        node_id = leaving.pop()
        if node_id in trapped:
            trapped.discard(node_id)
            leaving.extend(source for source in into.get(node_id, ()) if source in trapped)
    trapped &= reachable(definition)
    if not trapped:
        return
    first = min(trapped, key=ids.__getitem__)
    names = ", ".join(f"'{n}'" for n in sorted(trapped, key=ids.__getitem__)[:5])
    more = f" and {len(trapped) - 5} more" if len(trapped) > 5 else ""
    yield Problem(
        pointer(["nodes", ids[first], "next"]),
        f"steps {names}{more} loop for ever: each of their outcomes leads back into the loop and none can "
        "end the run, so it ends only at the limit of 10,000 steps or the run's time cap",
        "give the loop a way out, such as a control.if whose other edge leads on (or nowhere, to end there)",
        "warning",
    )


# --- options that do nothing -----------------------------------------------------------------

# The kinds that wait for an element on the screen (a node's `timeoutMs` sets that wait).
_ELEMENT_WAIT_KINDS = (
    "action.tapByText",
    "action.tap",
    "action.typeText",
    "action.waitForText",
    "action.readText",
)
# The kinds that look for an element and so can end "not found", which `optional` turns into `skipped`.
_FINDING_KINDS = (*_ELEMENT_WAIT_KINDS, "action.scrollUntilVisible")


def check_optional(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """`optional: true` on a step that never looks for an element (warning): it would still fail."""
    for index, node in _all_nodes(definition):
        if not isinstance(node, Mapping) or node.get("optional") is not True:
            continue
        kind = node.get("kind")
        params = node.get("params")
        finds = kind in _FINDING_KINDS and not (
            kind == "action.typeText" and isinstance(params, Mapping) and "selector" not in params
        )
        if isinstance(kind, str) and not finds:
            what = "action.typeText without a selector" if kind == "action.typeText" else kind
            yield Problem(
                pointer(["nodes", index, "optional"]),
                f"optional has no effect on {what}: only a step that looks for an element (tapByText, tap, "
                "typeText with a selector, waitForText, readText, scrollUntilVisible) is skipped when it is "
                "not there; any other failure still fails the step",
                'to go on after a failure, add a failed edge: "next": {"ok": "...", "failed": "..."}',
                "warning",
            )


# The kinds whose wait a node's `timeoutMs` sets (when their params do not): the element waits and HTTP.
_TIMED_KINDS = (*_ELEMENT_WAIT_KINDS, "action.http")


def check_node_timeout(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """A node's `timeoutMs` on a kind that has no wait it sets (warning): it limits nothing."""
    for index, node in _all_nodes(definition):
        if not isinstance(node, Mapping) or "timeoutMs" not in node:
            continue
        kind = node.get("kind")
        params = node.get("params")
        timed = kind in _TIMED_KINDS and not (
            kind == "action.typeText" and isinstance(params, Mapping) and "selector" not in params
        )
        if isinstance(kind, str) and kind in OUTCOMES_BY_KIND and not timed:
            hint = {
                "action.wait": "set params.ms to the time to wait",
                "action.scrollUntilVisible": "params.maxSwipes bounds a scroll",
                "control.approval": "params.timeoutS bounds an approval",
            }.get(kind, "remove it, or cap the whole run with timeoutS")
            yield Problem(
                pointer(["nodes", index, "timeoutMs"]),
                f"timeoutMs has no effect on {kind}: a node's timeoutMs sets how long an element wait "
                "(tapByText, tap, typeText with a selector, waitForText, readText) or an HTTP call may take",
                hint,
                "warning",
            )


# --- HTTP steps ---------------------------------------------------------------------------

_TEMPLATE_TEXT = re.compile(r"\{\{.*?\}\}", re.S)


def check_http(definition: Any, denylist: Denylist | None) -> Iterator[Problem]:
    """What a run would refuse in an `action.http` step's literal url and header values."""
    for index, node in _all_nodes(definition):
        if not isinstance(node, Mapping) or node.get("kind") != "action.http":
            continue
        params = node.get("params")
        if not isinstance(params, Mapping):
            continue
        url = params.get("url")
        if isinstance(url, str) and url.startswith(("http://", "https://")) and "{{" not in url:
            why = _url_problem(url)
            if why is not None:
                yield Problem(
                    pointer(["nodes", index, "params", "url"]),
                    f"url {url[:200]!r} cannot be requested: {why}",
                    "write the address as https://host/path (a host name has letters, digits, '-' and '.')",
                )
        headers = params.get("headers")
        if isinstance(headers, Mapping):
            for name, value in headers.items():
                if isinstance(value, str):
                    problem = header_value_problem(str(name), _TEMPLATE_TEXT.sub("", value))
                    if problem is not None:
                        yield Problem(
                            pointer(["nodes", index, "params", "headers", str(name)]),
                            problem.split(": header values", 1)[0],
                            "header values are printable ASCII: percent-encode it or send it in params.body",
                        )


def _url_problem(url: str) -> str | None:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        return str(exc)
    if not parsed.host:
        return "it has no host"
    if "%" in parsed.host or any(char.isspace() for char in parsed.host):
        return f"its host {parsed.host!r} holds characters a host name cannot have"
    return None


_CHECKS: tuple[Check, ...] = (
    check_schema,
    check_ids,
    check_edges,
    check_reachable,
    check_templates,
    check_expressions,
    check_regexes,
    check_packages,
    check_target_packages,
    check_inputs,
    check_http,
    check_optional,
    check_endless_loops,
    check_node_timeout,
)
