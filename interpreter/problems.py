"""`Problem`: one thing wrong with a workflow definition, where it is and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
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


def close_matches(word: str, choices: Iterable[str]) -> list[str]:
    """Up to three choices that look like `word` (for "did you mean" hints)."""
    return difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when a close match exists, else an empty string."""
    matches = close_matches(word, choices)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(f"'{m}'" for m in matches) + "?)"
