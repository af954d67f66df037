"""CEL conditions for `control.if`: compiled once, evaluated over the template names."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import cel


class ExpressionError(Exception):
    """The expression does not compile, or failed when evaluated."""


# The CEL library's parser recurses natively: a long enough chain (about 40,000 characters of
# `a.b.b...`) overflows the C stack and kills the process, so longer text is refused unparsed.
MAX_EXPRESSION_LENGTH = 4000


# The library's `size()` counts a string's UTF-8 bytes; the CEL spec counts code points
# (`size("é") == 1`). Every `size(...)` and `.size()` call is compiled as a call of this
# function instead, which counts as the spec says and names what it cannot count.
_SIZE = "phoneflow_size"


def _size(value: Any) -> int:
    if isinstance(value, (str, bytes, list, tuple, dict, Mapping)):
        return len(value)
    kind = "null" if value is None else type(value).__name__
    raise TypeError(f"size() counts a string, bytes, a list or a map, not {kind}")


def _with_spec_size(expr: str) -> str:
    """`expr` with each call of `size` (global or method) renamed to `_SIZE`; string literals untouched."""
    out: list[str] = []
    i, n = 0, len(expr)
    while i < n:
        char = expr[i]
        if char in "\"'":
            end = _string_end(expr, i)
            out.append(expr[i:end])
            i = end
        elif char.isalpha() or char == "_":
            start = i
            while i < n and (expr[i].isalnum() or expr[i] == "_"):
                i += 1
            word = expr[start:i]
            after = expr[i:].lstrip()
            out.append(_SIZE if word == "size" and after.startswith("(") else word)
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _string_end(expr: str, start: int) -> int:
    """The index after the string literal that opens at `start` (single or triple quotes)."""
    quote = expr[start]
    raw = start > 0 and expr[start - 1] in "rR"
    delimiter = quote * 3 if expr.startswith(quote * 3, start) else quote
    i = start + len(delimiter)
    while i < len(expr):
        if expr[i] == "\\" and not raw:
            i += 2
            continue
        if expr.startswith(delimiter, i):
            return i + len(delimiter)
        i += 1
    return len(expr)  # unterminated: the parser says so


# A comprehension runs its body once per element; one inside another multiplies (`l.map(x, l.map(y,
# ...))` over a list of inputs), and each one chained after another can double what it works on
# (`.map(x, [x, x])`): 17 nested ones over two-element lists took a second, each more doubled it. So
# an expression has at most this many, none inside another: its cost stays linear in its data.
COMPREHENSIONS = ("all", "exists", "exists_one", "filter", "map")
MAX_COMPREHENSIONS = 2


def comprehension_problem(expr: str) -> str | None:
    """Why `expr`'s comprehensions (`.map(...)`, `.all(...)`, ...) could cost more than its data, or None."""
    count = 0
    open_macros: list[int] = []  # the parenthesis depth at which each open comprehension's call began
    depth = 0
    i, n = 0, len(expr)
    while i < n:
        char = expr[i]
        if char in "\"'":
            i = _string_end(expr, i)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            while open_macros and open_macros[-1] > depth:
                open_macros.pop()
        elif char.isalpha() or char == "_":
            start = i
            while i < n and (expr[i].isalnum() or expr[i] == "_"):
                i += 1
            word = expr[start:i]
            if (
                word in COMPREHENSIONS
                and expr[:start].rstrip().endswith(".")
                and expr[i:].lstrip().startswith("(")
            ):
                if open_macros:
                    return f"it has .{word}(...) inside another comprehension; compute one level at a time"
                count += 1
                if count > MAX_COMPREHENSIONS:
                    return (
                        f"it has more than {MAX_COMPREHENSIONS} comprehensions (.map, .filter, .all, .exists)"
                    )
                open_macros.append(depth + 1)
            continue
        i += 1
    return None


def _plain(text: str) -> str:
    return text.replace(_SIZE, "size")


@lru_cache(maxsize=1024)
def compile_expression(expr: str) -> Any:
    """The compiled CEL program, or `ExpressionError` with the parser's words."""
    if len(expr) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"the expression is {len(expr)} characters long; at most {MAX_EXPRESSION_LENGTH} are allowed"
        )
    if not expr.strip():
        raise ExpressionError("the expression is empty: write a condition such as vars.n < 3")
    costly = comprehension_problem(expr)
    if costly is not None:
        raise ExpressionError(
            f"the expression could take time beyond any bound: {costly} (at most "
            f"{MAX_COMPREHENSIONS} a condition, none inside another; split it over several control.if nodes)"
        )
    try:
        return cel.compile(_with_spec_size(expr))
    except Exception as exc:  # the library raises ValueError, but be safe: it is a boundary
        first_line = _plain(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
        detail = _plain("\n".join(str(exc).splitlines()[1:]).strip())
        raise ExpressionError(f"{first_line}{': ' + detail if detail else ''}") from exc


def evaluate(expr: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate `expr` with the names of `scope` (`inputs`, `vars`, `nodes`, `run`, `device`)."""
    program = compile_expression(expr)
    context = cel.Context()
    context.add_function(_SIZE, _size)
    for name, value in scope.items():
        context.add_variable(name, value)
    try:
        return program.execute(context)
    except KeyError as exc:
        raise ExpressionError(f"no such field {exc.args[0]!r} in the expression '{expr}'") from exc
    except Exception as exc:
        text = str(exc)
        if _SIZE in text and "size() counts" in text:
            reason = text[text.index("size() counts") :].split(". Check", 1)[0]
            raise ExpressionError(f"the expression '{expr}' failed: {reason}") from exc
        raise ExpressionError(f"the expression '{expr}' failed: {_plain(text)}") from exc


def root_names(expr: str) -> list[str]:
    """The top-level names `expr` uses (for validation), or [] when it does not compile."""
    try:
        program = compile_expression(expr)
    except ExpressionError:
        return []
    return sorted({str(name).split(".", 1)[0] for name in program.variables()})
