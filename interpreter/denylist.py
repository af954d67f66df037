"""The package denylist: exact names and globs (`com.bank.*`)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

_VALID_ENTRY = re.compile(r"^[A-Za-z0-9_.*?\[\]-]+$")


class PackageRules(Protocol):
    """What the engine asks of a denylist: a `Denylist`, or a live one whose entries may change
    between steps (the bridge's, which follows the server's list while a run moves)."""

    def match(self, package: str) -> str | None: ...

    def denies(self, package: str) -> bool: ...

    def __len__(self) -> int: ...


class Denylist:
    """An immutable set of package names and globs."""

    __slots__ = ("_exact", "_globs", "entries")

    def __init__(self, entries: Iterable[str] = ()) -> None:
        cleaned = [e.strip() for e in entries if e.strip()]
        for entry in cleaned:
            if not _VALID_ENTRY.match(entry):
                raise ValueError(
                    f"denylist entry {entry!r} is not a package name or glob: "
                    "use letters, digits, '.', '_', and '*' or '?' as wildcards"
                )
        self.entries: tuple[str, ...] = tuple(dict.fromkeys(cleaned))
        self._exact = frozenset(e for e in self.entries if not any(c in e for c in "*?["))
        self._globs = tuple(
            (e, re.compile(fnmatch.translate(e))) for e in self.entries if e not in self._exact
        )

    @classmethod
    def parse(cls, text: str) -> Denylist:
        """One name or glob a line; `#` starts a comment."""
        return cls(line.split("#", 1)[0] for line in text.splitlines())

    @classmethod
    def from_file(cls, path: str | Path) -> Denylist:
        return cls.parse(Path(path).read_text(encoding="utf-8"))

    def match(self, package: str) -> str | None:
        """The entry that denies `package`, or None when it is allowed."""
        if package in self._exact:
            return package
        for entry, pattern in self._globs:
            if pattern.match(package):
                return entry
        return None

    def denies(self, package: str) -> bool:
        return self.match(package) is not None

    def __add__(self, other: Denylist) -> Denylist:
        return Denylist(self.entries + other.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Denylist({list(self.entries)!r})"


def denied_message(package: str, entry: str | None = None, came_by: str | None = None) -> str:
    """The one wording of a denylist refusal, for every side.

    `entry` is the denylist's name or glob that matched (said when it is a glob); `came_by` says
    how the app came to the front (the run's words, for a refusal at run time).
    """
    words = f"denied: {package} is on the package denylist"
    if entry is not None and entry != package:
        words += f" (entry '{entry}')"
    if came_by:
        words += f"; {came_by}"
    return words
