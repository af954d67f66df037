"""Refusing regular expressions that backtrack without bound (catastrophic backtracking, ReDoS).

Python's `re` backtracks: `(a+)+$` against 30 `a`s and a `!` tries every way of splitting the
`a`s, about 2^30 steps, and holds the interpreter while it does (one such pattern in a workflow or
an inputs schema stalls a whole server process). The shapes that make a backtracking engine
exponential are few and easy to avoid, so a pattern that has one is refused before it runs:

* a quantifier over something that itself repeats a variable number of times (`(a+)+`,
  `(\\w+\\s?)*`, `(a{1,3})+`), unless every round starts with a character that the inner
  repeat cannot match (`(\\.[a-z]*)+` is fine); an optional part, `(ab?)+`, is fine too;
* a quantifier over alternatives that do not each start with their own literal character
  (`(a|ab)*`, `(\\d|\\w)+`); `(foo|bar)+` is fine;
* a backreference (`(.*)\\1`).

Possessive quantifiers (`a++`) and atomic groups (`(?>...)`) never backtrack into themselves and
are always fine: `(?>a+)+` is the safe spelling of `(a+)+`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}
_NEVER_BACKTRACK = {sre_constants.POSSESSIVE_REPEAT, sre_constants.ATOMIC_GROUP}
_BACKREFERENCES = {
    sre_constants.GROUPREF,
    sre_constants.GROUPREF_EXISTS,
    sre_constants.GROUPREF_IGNORE,
    sre_constants.GROUPREF_LOC_IGNORE,
    sre_constants.GROUPREF_UNI_IGNORE,
}
HOW_TO_FIX = (
    "rewrite it without a repeated group that itself repeats or has overlapping alternatives "
    "(e.g. `[a-z ]+` for `([a-z]+ ?)+`), or make the inner part possessive (`a++`) or atomic (`(?>...)`)"
)


@lru_cache(maxsize=1024)
def backtracking_risk(pattern: str) -> str | None:
    """Why `pattern` may backtrack without bound (words for a person), or None when it cannot.

    A pattern that does not compile is no risk here: compiling it says what is wrong."""
    try:
        parsed = sre_parse.parse(pattern)
    except Exception:  # noqa: BLE001 - any parse failure is reported by re.compile itself
        return None
    return _risk(list(parsed), outer=None)


# Inside a repeated group: the literal character its every round starts with, if any (`(\.[a-z]*)+`:
# `.`). A variable repeat inside that cannot match this character cannot share its text with the next
# round, so it is safe there.
_NO_DELIMITER = -1


def _risk(items: list[tuple[Any, Any]], outer: int | None) -> str | None:
    """Why these parsed items may backtrack without bound; `outer` is None outside any repeated group,
    else the literal every round of the innermost one starts with (or `_NO_DELIMITER`)."""
    for op, av in items:
        if op in _BACKREFERENCES:
            return "it has a backreference (\\1, (?P=name)), which can take exponential time to fail"
        if op in _NEVER_BACKTRACK:
            continue
        if op in _REPEATS:
            low, high, body = av
            body = list(body)
            if outer is not None and low != high and high > 1 and not _cannot_match(body, outer):
                return "a repeated group repeats something a variable number of times (like `(a+)+`)"
            inner = outer
            if outer is None and high > 1:
                inner = _first_literal(body)
            found = _risk(body, inner)
            if found is not None:
                return found
        elif op is sre_constants.BRANCH:
            branches = av[1]
            if outer is not None and not _distinct_first_literals(branches):
                return "a repeated group has alternatives that can match the same text (like `(a|ab)*`)"
            for branch in branches:
                found = _risk(list(branch), outer)
                if found is not None:
                    return found
        elif op is sre_constants.SUBPATTERN:
            found = _risk(list(av[-1]), outer)
            if found is not None:
                return found
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            found = _risk(list(av[1]), outer)
            if found is not None:
                return found
    return None


def _first_literal(items: list[tuple[Any, Any]]) -> int:
    """The character code a sequence must start with (through groups), or `_NO_DELIMITER`."""
    while items:
        op, av = items[0]
        if op is sre_constants.LITERAL:
            return int(av)
        if op is not sre_constants.SUBPATTERN:
            return _NO_DELIMITER
        items = list(av[-1])
    return _NO_DELIMITER


_CATEGORIES: dict[Any, Callable[[str], bool]] = {
    sre_constants.CATEGORY_DIGIT: str.isdigit,
    sre_constants.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    sre_constants.CATEGORY_SPACE: str.isspace,
    sre_constants.CATEGORY_NOT_DIGIT: lambda c: not c.isdigit(),
    sre_constants.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
    sre_constants.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
}


def _cannot_match(body: list[tuple[Any, Any]], code: int) -> bool:
    """Whether a repeat's body is one character class that never matches the character `code`."""
    if code == _NO_DELIMITER or len(body) != 1:
        return False
    op, av = body[0]
    char = chr(code)
    if op is sre_constants.LITERAL:
        return bool(av != code)
    if op is sre_constants.NOT_LITERAL:
        return bool(av == code)
    if op is not sre_constants.IN:
        return False  # ANY and anything else: assume it matches
    negate = False
    matched = False
    for item_op, item_av in av:
        if item_op is sre_constants.NEGATE:
            negate = True
        elif item_op is sre_constants.LITERAL:
            matched = matched or item_av == code
        elif item_op is sre_constants.RANGE:
            matched = matched or item_av[0] <= code <= item_av[1]
        elif item_op is sre_constants.CATEGORY and item_av in _CATEGORIES:
            matched = matched or _CATEGORIES[item_av](char)
        else:
            return False  # a class this check does not read: assume it matches
    return matched == negate


def _distinct_first_literals(branches: list[Any]) -> bool:
    """Whether every alternative starts with a literal character of its own (then at most one applies)."""
    firsts = []
    for branch in branches:
        items = list(branch)
        if not items or items[0][0] is not sre_constants.LITERAL:
            return False
        firsts.append(items[0][1])
    return len(set(firsts)) == len(firsts)


def schema_patterns(schema: Any, at: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Every regular expression of a JSON Schema (`pattern` values, `patternProperties` names), each
    with where it is."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                found.append(((*at, key), value))
            elif key == "patternProperties" and isinstance(value, dict):
                found += [((*at, key, name), name) for name in value if isinstance(name, str)]
            if isinstance(value, dict | list):
                found += schema_patterns(value, (*at, key))
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            found += schema_patterns(item, (*at, index))
    return found
