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


@lru_cache(maxsize=1024)
def compile_expression(expr: str) -> Any:
    """The compiled CEL program, or `ExpressionError` with the parser's words."""
    if len(expr) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"the expression is {len(expr)} characters long; at most {MAX_EXPRESSION_LENGTH} are allowed"
        )
    try:
        return cel.compile(expr)
    except Exception as exc:  # the library raises ValueError, but be safe: it is a boundary
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        detail = "\n".join(str(exc).splitlines()[1:]).strip()
        raise ExpressionError(f"{first_line}{': ' + detail if detail else ''}") from exc


def evaluate(expr: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate `expr` with the names of `scope` (`inputs`, `vars`, `nodes`, `run`, `device`)."""
    program = compile_expression(expr)
    try:
        return program.execute(dict(scope))
    except KeyError as exc:
        raise ExpressionError(f"no such field {exc.args[0]!r} in the expression '{expr}'") from exc
    except Exception as exc:
        raise ExpressionError(f"the expression '{expr}' failed: {exc}") from exc


def root_names(expr: str) -> list[str]:
    """The top-level names `expr` uses (for validation), or [] when it does not compile."""
    try:
        program = compile_expression(expr)
    except ExpressionError:
        return []
    return sorted({str(name).split(".", 1)[0] for name in program.variables()})
