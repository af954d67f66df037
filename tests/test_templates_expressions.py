"""The shared template and CEL modules: what a workflow author can write and what comes out."""

from __future__ import annotations

from typing import Any

import pytest

from interpreter.expressions import (
    MAX_EXPRESSION_LENGTH,
    ExpressionError,
    compile_expression,
    evaluate,
    root_names,
)
from interpreter.templates import (
    TEMPLATE_ROOTS,
    TemplateError,
    check_path,
    references,
    render,
    render_text,
    resolve,
)

SCOPE: dict[str, Any] = {
    "inputs": {
        "n": 5,
        "s": "A-1",
        "zero": 0,
        "empty": "",
        "no": False,
        "items": [1, {"a": 2}],
        "obj": {"k": "v"},
        "none": None,
        "items_list": [3, 4, 5],
        "name": "Zoë",
    },
    "vars": {"count": 2},
    "nodes": {"read": {"output": {"text": "Order #12"}}},
    "run": {"id": "run-1"},
    "device": {"serial": "emulator-5554"},
}


# --- templates ------------------------------------------------------------------------------


def test_references_finds_every_path_in_order_deep_inside_values() -> None:
    value = {"a": ["{{ inputs.x }}", {"b": "{{vars.y}} and {{run.id}}"}], "c": 3, "d": "{{device.serial}}"}
    assert list(references(value)) == ["inputs.x", "vars.y", "run.id", "device.serial"]
    assert list(references("no templates {here}")) == []
    assert list(references(None)) == []


def test_references_survives_nesting_deeper_than_the_recursion_limit() -> None:
    deep: Any = "{{inputs.n}}"
    for _ in range(10_000):
        deep = {"x": [deep]}
    assert list(references(deep)) == ["inputs.n"]


@pytest.mark.parametrize(
    "path", ["inputs.n", "nodes.read.output.text", "run.id", "device.serial", "vars.a_b-c"]
)
def test_check_path_accepts_known_roots(path: str) -> None:
    assert check_path(path) is None


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("secrets.key", "unknown template root 'secrets'"),
        ("inputs..n", "is not a template path"),
        ("", "is not a template path"),
        ("1.x", "is not a template path"),
        ("inputs.x y", "is not a template path"),
        ("inputs.x\n", "is not a template path"),
        ("vars.rows[2].name", "a list's item is written with a dot, {{vars.rows.2.name}}"),
    ],
)
def test_check_path_says_what_is_wrong(path: str, words: str) -> None:
    reason = check_path(path)
    assert reason is not None
    assert words in reason


def test_template_roots_are_the_five_of_the_workflow_format() -> None:
    assert set(TEMPLATE_ROOTS) == {"inputs", "vars", "nodes", "run", "device"}


def test_a_whole_template_keeps_the_value_type() -> None:
    assert render("{{inputs.n}}", SCOPE) == 5
    assert render("{{ inputs.n }}", SCOPE) == 5
    assert render("{{inputs.no}}", SCOPE) is False
    assert render("{{inputs.zero}}", SCOPE) == 0
    assert render("{{inputs.obj}}", SCOPE) == {"k": "v"}
    assert render("{{inputs.items.1.a}}", SCOPE) == 2


def test_templates_inside_text_are_written_as_text() -> None:
    assert render("n={{inputs.n}}", SCOPE) == "n=5"
    assert render(" {{inputs.n}}", SCOPE) == " 5"
    assert render("{{inputs.n}}{{inputs.s}}", SCOPE) == "5A-1"
    assert render("flag {{inputs.no}}", SCOPE) == "flag false"
    assert render("obj {{inputs.obj}} list {{inputs.items}}", SCOPE) == 'obj {"k":"v"} list [1,{"a":2}]'
    assert render("hi {{inputs.name}}", SCOPE) == "hi Zoë"
    assert render("x{{inputs.empty}}y", SCOPE) == "xy"


def test_render_goes_into_dicts_and_lists_and_leaves_other_values() -> None:
    params = {
        "body": {"order": "{{inputs.s}}", "n": "{{inputs.n}}", "tags": ["{{run.id}}", 7, None]},
        "ms": 10,
    }
    assert render(params, SCOPE) == {"body": {"order": "A-1", "n": 5, "tags": ["run-1", 7, None]}, "ms": 10}
    assert params["body"]["order"] == "{{inputs.s}}"  # the input is not changed


def test_unbalanced_braces_stay_text() -> None:
    assert render("{{inputs.n}", SCOPE) == "{{inputs.n}"
    assert render("{{{inputs.n}}}", SCOPE) == "{5}"


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        ("{{inputs.missing}}", "inputs.missing", "does not resolve"),
        ("{{inputs.items.9}}", "inputs.items.9", "does not resolve"),
        ("{{inputs.s.0}}", "inputs.s.0", "does not resolve"),
        ("{{nodes.ghost.output.text}}", "nodes.ghost.output.text", "does not resolve"),
        ("{{secrets.key}}", "secrets.key", "unknown template root"),
    ],
)
def test_a_path_that_does_not_resolve_fails_naming_it(text: str, path: str, words: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(text, SCOPE)
    assert caught.value.path == path
    assert words in caught.value.reason
    assert path in str(caught.value)


def test_a_null_value_renders_as_null() -> None:
    assert render("order {{inputs.none}}", SCOPE) == "order null"  # the JSON word, never an empty string
    assert render({"note": "{{inputs.none}}"}, SCOPE) == {"note": None}  # a whole value stays null


def test_resolve_reads_lists_by_index() -> None:
    assert resolve("inputs.items_list.2", SCOPE) == 5
    with pytest.raises(TemplateError):
        resolve("inputs.items_list.-1", SCOPE)


def test_render_text_writes_json_words() -> None:
    assert render_text("{{inputs.n}}", SCOPE) == "5"
    assert render_text({"a": "{{inputs.no}}"}, SCOPE) == '{"a":false}'
    assert render_text(None, SCOPE) == "null"
    assert render_text(True, SCOPE) == "true"


# --- CEL ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("inputs.n > 3", True),
        ("inputs.n + vars.count", 7),
        ("inputs.s == 'A-1' && vars.count < 3", True),
        ("size(inputs.items_list) == 3", True),
        ("inputs.items_list.exists(x, x > 4)", True),
        ("inputs.items_list.all(x, x > 4)", False),
        ("has(inputs.missing)", False),
        ("inputs.none == null", True),
        ("nodes.read.output.text.startsWith('Order')", True),
        ("nodes.read.output.text.matches('^Order #[0-9]+$')", True),
        ("device.serial + '/' + run.id", "emulator-5554/run-1"),
        ("inputs.n == 5.0", True),
    ],
)
def test_evaluate(expr: str, expected: Any) -> None:
    assert evaluate(expr, SCOPE) == expected


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("inputs.missing == 1", "no such field 'missing'"),
        ("1 / 0", "division by zero"),
        ("'a' < 1", "failed"),
        ("unknown.x", "failed"),
    ],
)
def test_evaluation_errors_are_expression_errors_with_words(expr: str, words: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate(expr, SCOPE)
    assert words in str(caught.value)


def test_compile_errors_carry_the_parser_position() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("inputs.n >")
    assert "1:11" in str(caught.value)


def test_compile_is_cached() -> None:
    assert compile_expression("vars.count == 2") is compile_expression("vars.count == 2")


def test_overlong_expressions_are_refused_before_the_parser_sees_them() -> None:
    # the CEL parser overflows the C stack (the whole process dies) on ~40,000 characters of `a.b.b...`
    with pytest.raises(ExpressionError, match="at most 4000"):
        compile_expression("a" + ".b" * 30_000)
    assert compile_expression("inputs" + ".b" * ((MAX_EXPRESSION_LENGTH - 6) // 2)) is not None


def test_root_names() -> None:
    assert root_names("inputs.n > 1 && nodes.read.output.text != '' || vars.x") == ["inputs", "nodes", "vars"]
    assert root_names("1 +") == []


def test_cel_size_counts_code_points_items_and_keys() -> None:
    from interpreter.expressions import ExpressionError, evaluate

    scope = {"inputs": {"name": "Zoë", "tags": ["é", "ü"], "sizes": {"größe": 1}, "none": None}}
    assert evaluate('size("é") == 1 && "héé".size() == 3', scope) is True
    assert evaluate("size(inputs.name) == 3 && inputs.name.size() == 3", scope) is True
    assert evaluate("size(inputs.tags) == 2 && size(inputs.sizes) == 1", scope) is True
    assert evaluate('inputs.name == "size(x)"', {"inputs": {"name": "size(x)"}}) is True  # strings untouched
    with pytest.raises(ExpressionError, match=r"size\(\) counts a string, bytes, a list or a map, not null"):
        evaluate("size(inputs.none) > 0", scope)
    with pytest.raises(ExpressionError, match="the expression is empty"):
        evaluate("   ", scope)
