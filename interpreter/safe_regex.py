"""Refusing regular expressions that backtrack without bound (catastrophic backtracking, ReDoS).

Python's `re` backtracks: `(a+)+$` against 30 `a`s and a `!` tries every way of splitting the
`a`s, about 2^30 steps, and holds the interpreter while it does (one such pattern in a workflow or
an inputs schema stalls a whole server process). The shapes that make a backtracking engine
exponential are few and easy to avoid, so a pattern that has one is refused before it runs:

* a quantifier over something that itself repeats a variable number of times (`(a+)+`,
  `(\\w+\\s?)*`, `(a{1,3})+`), unless every round starts or ends with a character that the
  inner repeat cannot match, which then tells the rounds apart (`(\\.[a-z]*)+`, `([\\w-]+\\.)+`,
  `(\\d{1,3}\\.){3}` and `(\\w+\\s)*` are fine); an optional part, `(ab?)+`, is fine too;
* a quantifier over alternatives that do not each start with their own literal character
  (`(a|ab)*`, `(\\d|\\w)+`); `(foo|bar)+` is fine;
* a backreference (`(.*)\\1`).

Possessive quantifiers (`a++`) and atomic groups (`(?>...)`) never backtrack into themselves and
are always fine: `(?>a+)+` is the safe spelling of `(a+)+`.

What remains is polynomial: `.*a.*b.*c` tries every way to place its three `.*`s (n^3 steps for a
text of n characters that fails: 30,000 characters took minutes), and even `.*x` searched for in a
long text is n^2. Such patterns are too common to refuse (`.*Order.*total.*` against a screen's
short text is harmless), so what a user's regex may cost is bounded when it runs instead: patterns
run on the `regex` engine (Python `re`'s syntax and meaning, with a time bound), each look (a
selector over one screen, a run's inputs against their schema) may spend `LOOK_BUDGET_S` seconds of
CPU in them and a run `RUN_BUDGET_S` in all; past that the look fails with `RegexTooSlow`, which
says which pattern, on how long a text, and how to rewrite it. CPU time, not wall time: a busy
machine does not make an ordinary pattern fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import regex

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
    # Under IGNORECASE a character class also matches the other case of what it lists.
    folded = bool(parsed.state.flags & sre_constants.SRE_FLAG_IGNORECASE)
    return _risk(list(parsed), outer=None, folded=folded)


# Inside a repeated group: the one-character parts its every round starts and ends with, if any
# (`(\.[a-z]*)+`: `.`; `([\w-]+\.)+`: `.`). A variable repeat inside that cannot match one of them
# cannot share its text with the next round, so it is safe there.
Part = tuple[Any, Any]
_NO_DELIMITER: tuple[Part, ...] = ()
_ONE_CHARACTER = {sre_constants.LITERAL, sre_constants.NOT_LITERAL, sre_constants.IN, sre_constants.ANY}


def _risk(items: list[Part], outer: tuple[Part, ...] | None, folded: bool = False) -> str | None:
    """Why these parsed items may backtrack without bound; `outer` is None outside any repeated group,
    else the one-character parts every round of the innermost one starts or ends with."""
    for op, av in items:
        if op in _BACKREFERENCES:
            return "it has a backreference (\\1, (?P=name)), which can take exponential time to fail"
        if op in _NEVER_BACKTRACK:
            continue
        if op in _REPEATS:
            low, high, body = av
            body = list(body)
            if outer is not None and low != high and high > 1 and not _cannot_match(body, outer, folded):
                return "a repeated group repeats something a variable number of times (like `(a+)+`)"
            inner = outer
            if outer is None and high > 1:
                inner = _delimiters(body)
            found = _risk(body, inner, folded)
            if found is not None:
                return found
        elif op is sre_constants.BRANCH:
            branches = av[1]
            if outer is not None and not _distinct_first_literals(branches):
                return "a repeated group has alternatives that can match the same text (like `(a|ab)*`)"
            for branch in branches:
                found = _risk(list(branch), outer, folded)
                if found is not None:
                    return found
        elif op is sre_constants.SUBPATTERN:
            found = _risk(list(av[-1]), outer, folded)
            if found is not None:
                return found
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            found = _risk(list(av[1]), outer, folded)
            if found is not None:
                return found
    return None


def _delimiters(items: list[Part]) -> tuple[Part, ...]:
    """The one-character parts a sequence must start and end with (through groups), if any."""
    found = []
    for end in (0, -1):
        part = items
        while part:
            op, av = part[end]
            if op in _ONE_CHARACTER:
                found.append((op, av))
                break
            if op is not sre_constants.SUBPATTERN:
                break
            part = list(av[-1])
    return tuple(found)


_CATEGORIES: dict[Any, Callable[[str], bool]] = {
    sre_constants.CATEGORY_DIGIT: str.isdigit,
    sre_constants.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    sre_constants.CATEGORY_SPACE: str.isspace,
    sre_constants.CATEGORY_NOT_DIGIT: lambda c: not c.isdigit(),
    sre_constants.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
    sre_constants.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
}
# The characters two classes are compared on (a literal is compared on itself): Latin and its
# accents, digits and spaces of other scripts, CJK, an emoji.
_SAMPLE = [chr(code) for code in range(0x300)] + list("\u0663\u0966\u2028\u3000\u216b\u4e2d\U0001f600")


def _matcher(part: Part) -> Callable[[str], bool] | None:
    """Whether a one-character part matches a character, or None for a part this check does not read."""
    op, av = part
    if op is sre_constants.LITERAL:
        return lambda c: ord(c) == av
    if op is sre_constants.NOT_LITERAL:
        return lambda c: ord(c) != av
    if op is sre_constants.ANY:
        return lambda c: c != "\n"
    if op is not sre_constants.IN:
        return None
    negate = False
    tests: list[Callable[[str], bool]] = []
    for item_op, item_av in av:
        if item_op is sre_constants.NEGATE:
            negate = True
        elif item_op is sre_constants.LITERAL:
            tests.append(_is_code(int(item_av)))
        elif item_op is sre_constants.RANGE:
            tests.append(_in_range(int(item_av[0]), int(item_av[1])))
        elif item_op is sre_constants.CATEGORY and item_av in _CATEGORIES:
            tests.append(_CATEGORIES[item_av])
        else:
            return None
    return lambda c: any(test(c) for test in tests) != negate


def _is_code(code: int) -> Callable[[str], bool]:
    return lambda c: ord(c) == code


def _in_range(low: int, high: int) -> Callable[[str], bool]:
    return lambda c: low <= ord(c) <= high


def _overlap(a: Part, b: Part, folded: bool) -> bool:
    """Whether two one-character parts can match the same character (True when unsure)."""
    match_a, match_b = _matcher(a), _matcher(b)
    if match_a is None or match_b is None:
        return True
    # A literal is compared on itself (and its other case under IGNORECASE); classes on the sample.
    chars = [chr(p[1]) for p in (a, b) if p[0] is sre_constants.LITERAL] or _SAMPLE
    if folded:
        chars = [variant for c in chars for variant in {c, c.lower(), c.upper()} if len(variant) == 1]

    def matches(match: Callable[[str], bool], c: str) -> bool:
        return match(c) or (folded and (match(c.lower()) or match(c.upper())))

    return any(matches(match_a, c) and matches(match_b, c) for c in chars)


def _cannot_match(body: list[Part], delimiters: tuple[Part, ...], folded: bool) -> bool:
    """Whether a repeat's body is one character part that never matches one of the delimiters."""
    if len(body) != 1 or body[0][0] not in _ONE_CHARACTER:
        return False
    return any(not _overlap(body[0], delimiter, folded) for delimiter in delimiters)


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


# --- running a user's regex with a bound on its time -------------------------------------------

LOOK_BUDGET_S = 1.0  # CPU seconds one look (a selector over a screen, a run's inputs) may spend
RUN_BUDGET_S = 20.0  # CPU seconds one run's looks may spend in all
UNBOUNDED_S = 1e9  # a look with no bound: for phoneflow's own linear patterns only
HOW_TO_SPEED_UP = (
    "it tries too many ways to split the text between its repeats; make each repeat match only what "
    "it must (`[^,]*,` rather than `.*,`, `[^a]*a[^b]*b` rather than `.*a.*b`), drop a leading or "
    "trailing `.*`, or match a shorter text"
)


class RegexTooSlow(ValueError):
    """A user's regex used up the CPU time it may take; the message says which, on what, and what to do."""


def compile_user(pattern: str) -> regex.Pattern[str]:
    """`pattern` for the `regex` engine (Python `re`'s syntax and meaning: its version 0), which can
    stop a match after a time. Raises `regex.error` where `re` would raise `re.error`."""
    return _compiled(pattern)


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern, regex.VERSION0)


class RegexBudget:
    """The CPU time user regexes may still take. `look()` gives one look's budget out of it (at most
    `LOOK_BUDGET_S`); what a look spends is taken from it. One per run (`RUN_BUDGET_S`)."""

    __slots__ = ("left_s",)

    def __init__(self, seconds: float = RUN_BUDGET_S) -> None:
        self.left_s = seconds

    def look(self) -> LookBudget:
        return LookBudget(min(LOOK_BUDGET_S, self.left_s), self)


class LookBudget:
    """The CPU time one look may spend in user regexes; `fullmatch` and `search` run a pattern within it
    (the `regex` engine's timeout counts CPU time too) and raise `RegexTooSlow` once it is spent."""

    __slots__ = ("left_s", "_run")

    def __init__(self, seconds: float = LOOK_BUDGET_S, run: RegexBudget | None = None) -> None:
        self.left_s = seconds
        self._run = run

    def fullmatch(self, pattern: str, text: str) -> bool:
        return self._run_one(pattern, text, full=True)

    def search(self, pattern: str, text: str) -> bool:
        return self._run_one(pattern, text, full=False)

    def _run_one(self, pattern: str, text: str, *, full: bool) -> bool:
        compiled = _compiled(pattern)
        left = self.left_s
        if left <= 0:
            raise self._too_slow(pattern, text)
        started = time.thread_time()
        try:
            if full:
                found = compiled.fullmatch(text, timeout=left) is not None
            else:
                found = compiled.search(text, timeout=left) is not None
        except TimeoutError:
            # The engine counts the process's CPU time, this thread's may be less: a look that ran out
            # spent all it had, whatever the thread's clock says.
            self._charge(max(time.thread_time() - started, left))
            raise self._too_slow(pattern, text) from None
        self._charge(time.thread_time() - started)
        return found

    def _charge(self, spent: float) -> None:
        self.left_s -= spent
        if self._run is not None:
            self._run.left_s -= spent

    def _too_slow(self, pattern: str, text: str) -> RegexTooSlow:
        if self._run is not None and self._run.left_s <= 0:
            limit = f"the {RUN_BUDGET_S:g} s of CPU a run's regular expressions may take in all"
        else:
            limit = f"the {LOOK_BUDGET_S:g} s of CPU it may take at one look"
        return RegexTooSlow(
            f"regex {pattern!r} was stopped: on a text of {len(text):,} characters it used up {limit}; "
            f"{HOW_TO_SPEED_UP}"
        )
