"""`Problem`: one thing wrong with a workflow definition, where it is and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """A validation finding. `pointer` is an RFC 6901 JSON pointer into the definition."""

    pointer: str
    message: str
    hint: str
    severity: Severity = "error"

    def to_json(self) -> dict[str, str]:
        """The problem as the API and `--json` write it."""
        return {
            "pointer": self.pointer,
            "message": self.message,
            "hint": self.hint,
            "severity": self.severity,
        }

    def __str__(self) -> str:
        return f"{self.severity} {self.pointer or '/'}: {self.message}"


def errors_only(problems: Sequence[Problem]) -> list[Problem]:
    """The problems that make a definition invalid (warnings left out)."""
    return [p for p in problems if p.severity == "error"]


def pointer(parts: Iterable[str | int]) -> str:
    """The RFC 6901 pointer of a path (`~` and `/` in keys escaped)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _pointer_key(problem: Problem) -> tuple[tuple[int, int, str], ...]:
    # numeric segments sort as numbers so that /nodes/10 comes after /nodes/9
    return tuple(
        (0, int(part), "") if part.isascii() and part.isdigit() else (1, 0, part)
        for part in problem.pointer.split("/")[1:]
    )


def in_document_order(problems: Iterable[Problem]) -> list[Problem]:
    """Problems without duplicates, ordered by where they point, errors before warnings."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (_pointer_key(p), p.severity != "error", p.message))


# "Did you mean" costs a fuzzy comparison per candidate (tens of ms against thousands of
# ids), so a definition with thousands of broken references could keep a server busy for
# minutes. Within `suggestion_budget`, only so many words get suggestions, each against a
# bounded pool of plausible candidates.
_SUGGESTIONS_LEFT: ContextVar[int | None] = ContextVar("suggestions_left", default=None)
_MAX_CANDIDATES = 500


@contextmanager
def suggestion_budget(count: int) -> Iterator[None]:
    """Within the block, at most `count` words get "did you mean" suggestions."""
    token = _SUGGESTIONS_LEFT.set(count)
    try:
        yield
    finally:
        _SUGGESTIONS_LEFT.reset(token)


def close_matches(word: str, choices: Iterable[str]) -> list[str]:
    """Up to three choices that look like `word` (for "did you mean" hints)."""
    left = _SUGGESTIONS_LEFT.get()
    if left is not None:
        if left <= 0:
            return []
        _SUGGESTIONS_LEFT.set(left - 1)
    pool = [c for c in choices if isinstance(c, str)]
    if len(pool) > _MAX_CANDIDATES:
        # a close match differs little in length and almost always starts alike
        first = word[:1].casefold()
        alike = [c for c in pool if abs(len(c) - len(word)) <= 3 and c[:1].casefold() == first]
        pool = alike[:_MAX_CANDIDATES]
    return difflib.get_close_matches(word, pool, n=3, cutoff=0.6)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when a close match exists, else an empty string."""
    matches = close_matches(word, choices)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(f"'{m}'" for m in matches) + "?)"
