"""Shell arithmetic, `$((EXPR))`: signed 64-bit integers with C's operators and precedence.

Supported: decimal, `0x` hex and leading-0 octal numbers; variable names (unset or empty is 0);
unary `+ - ! ~`; `* / %` (division truncates toward zero), `+ -`, `<< >>`, `< <= > >=`, `== !=`,
`& ^ |`, `&& ||`, `?:` and parentheses. Assignments (`=`, `+=`, `++`) are not supported and say so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

__all__ = ["ArithError", "arith_end", "evaluate"]

_TOKEN = re.compile(
    r"\s*(?:(?P<num>0[xX][0-9a-fA-F]+|\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%()<>!~&^|?:=]))"
)
# Binary operators by precedence level, loosest first (after `?:`, `||` and `&&`).
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("|",),
    ("^",),
    ("&",),
    ("==", "!="),
    ("<", "<=", ">", ">="),
    ("<<", ">>"),
    ("+", "-"),
    ("*", "/", "%"),
)
_MASK = (1 << 64) - 1


class ArithError(ValueError):
    """A bad expression: the message says what is wrong, as the shell reports it."""


def _wrap(value: int) -> int:
    value &= _MASK
    return value - (1 << 64) if value >> 63 else value


def _binary(op: str, a: int, b: int) -> int:
    if op in ("/", "%"):
        if b == 0:
            raise ArithError("divide by zero")
        quotient = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
        return quotient if op == "/" else a - quotient * b
    operations: dict[str, Callable[[int, int], int]] = {
        "|": lambda x, y: x | y,
        "^": lambda x, y: x ^ y,
        "&": lambda x, y: x & y,
        "==": lambda x, y: int(x == y),
        "!=": lambda x, y: int(x != y),
        "<": lambda x, y: int(x < y),
        "<=": lambda x, y: int(x <= y),
        ">": lambda x, y: int(x > y),
        ">=": lambda x, y: int(x >= y),
        "<<": lambda x, y: x << (y & 63),
        ">>": lambda x, y: x >> (y & 63),
        "+": lambda x, y: x + y,
        "-": lambda x, y: x - y,
        "*": lambda x, y: x * y,
    }
    return _wrap(operations[op](a, b))


class _Parser:
    def __init__(self, text: str, variables: Mapping[str, str]) -> None:
        self.tokens: list[tuple[str, str]] = []
        self.variables = variables
        position = 0
        text = text.rstrip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise ArithError(f"unexpected '{text[position:].strip()[:1]}'")
            kind = match.lastgroup or "op"
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise ArithError("missing operand")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self) -> int:
        if not self.tokens:
            return 0
        value = self.ternary()
        if self.index < len(self.tokens):
            raise ArithError(f"unexpected '{self.tokens[self.index][1]}'")
        return value

    def ternary(self) -> int:
        condition = self.logical_or()
        if self.peek() != "?":
            return condition
        self.take()
        when_true = self.ternary()
        if self.take()[1] != ":":
            raise ArithError("'?' without ':'")
        when_false = self.ternary()
        return when_true if condition else when_false

    def logical_or(self) -> int:
        value = self.logical_and()
        while self.peek() == "||":
            self.take()
            right = self.logical_and()
            value = int(bool(value) or bool(right))
        return value

    def logical_and(self) -> int:
        value = self.binary(0)
        while self.peek() == "&&":
            self.take()
            right = self.binary(0)
            value = int(bool(value) and bool(right))
        return value

    def binary(self, level: int) -> int:
        if level == len(_LEVELS):
            return self.unary()
        value = self.binary(level + 1)
        while self.peek() in _LEVELS[level]:
            op = self.take()[1]
            value = _binary(op, value, self.binary(level + 1))
        return value

    def unary(self) -> int:
        kind, text = self.take()
        if kind == "num":
            base = 16 if text[:2] in ("0x", "0X") else 8 if text.startswith("0") else 10
            try:
                return _wrap(int(text, base))
            except ValueError:
                raise ArithError(f"{text}: bad number") from None
        if kind == "name":
            if self.peek() in ("=", "++", "--"):
                raise ArithError(f"assignment to {text} is not supported by this shell")
            return self.variable(text)
        if text == "(":
            value = self.ternary()
            if self.take()[1] != ")":
                raise ArithError("missing ')'")
            return value
        if text in ("++", "--", "="):
            raise ArithError(f"'{text}' (assignment) is not supported by this shell")
        operand = self.unary() if text in ("+", "-", "!", "~") else None
        if operand is None:
            raise ArithError(f"unexpected '{text}'")
        return {"+": operand, "-": _wrap(-operand), "!": int(not operand), "~": _wrap(~operand)}[text]

    def variable(self, name: str) -> int:
        raw = self.variables.get(name, "").strip()
        if not raw:
            return 0
        try:
            return _Parser(raw, {}).parse()
        except ArithError as exc:
            raise ArithError(f"{name}: {exc}") from exc


def evaluate(expression: str, variables: Mapping[str, str]) -> int:
    """The value of an arithmetic expression (`$name` already expanded); `ArithError` when bad."""
    return _Parser(expression, variables).parse()


def arith_end(text: str, start: int) -> int:
    """The index just after the `))` closing the `$((` at `start`; -1 when it is not closed."""
    depth = 0
    i = start + 3
    while i < len(text):
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return i + 2 if text.startswith("))", i) else -1
            depth -= 1
        i += 1
    return -1
