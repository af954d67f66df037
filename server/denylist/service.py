"""The package denylist: the global list from settings plus each account's own entries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from interpreter.denylist import Denylist
from interpreter.validation import denied_packages
from server.accounts.models import Account
from server.denylist.models import DenylistEntry
from server.errors import Conflict, FieldProblem, NotFound, ValidationFailed
from server.settings import Settings


def list_entries(session: Session, account_id: str) -> list[DenylistEntry]:
    return list(
        session.scalars(
            select(DenylistEntry)
            .where(DenylistEntry.account_id == account_id)
            .order_by(DenylistEntry.pattern, DenylistEntry.id)
        )
    )


def account_denylist(session: Session, account_id: str) -> Denylist:
    """The account's own entries as a Denylist."""
    return Denylist(entry.pattern for entry in list_entries(session, account_id))


def effective_denylist(session: Session, account_id: str, settings: Settings) -> Denylist:
    """What the account's workflows are checked against: the global list plus its own."""
    return settings.global_denylist + account_denylist(session, account_id)


def add_entry(session: Session, account: Account, pattern: str) -> DenylistEntry:
    """Add a package name or glob; 422 when it is not one, 409 when it is already there."""
    pattern = pattern.strip()
    try:
        Denylist([pattern])
    except ValueError as exc:
        raise ValidationFailed(
            [
                FieldProblem(
                    "/pattern", str(exc), "write a package name like com.bank.app or a glob like com.bank.*"
                )
            ]
        ) from None
    existing = session.scalars(
        select(DenylistEntry).where(DenylistEntry.account_id == account.id, DenylistEntry.pattern == pattern)
    ).first()
    if existing is not None:
        raise Conflict(f"{pattern} is already on this account's denylist")
    entry = DenylistEntry(account_id=account.id, pattern=pattern)
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
    except IntegrityError:  # a concurrent request added it first
        raise Conflict(f"{pattern} is already on this account's denylist") from None
    return entry


def remove_entry(session: Session, account: Account, entry_id: str) -> None:
    entry = session.scalars(
        select(DenylistEntry).where(DenylistEntry.id == entry_id, DenylistEntry.account_id == account.id)
    ).first()
    if entry is None:
        raise NotFound(f"no denylist entry {entry_id} in this account; list them with GET /api/v1/denylist")
    session.delete(entry)


# --- the effective list (global + account) with its version ----------------------------------


@dataclass(frozen=True, slots=True)
class EffectiveDenylist:
    """What an account's runs obey: the global list plus the account's own entries, with a version.

    `version` is a hash of the sorted patterns: the same list gives the same version in every
    server process, and any change to the global file or to the account's entries changes it.
    """

    global_patterns: tuple[str, ...]
    account_entries: tuple[tuple[str, str], ...]  # (pattern, entry id), sorted by pattern

    @property
    def patterns(self) -> list[str]:
        return sorted({*self.global_patterns, *(pattern for pattern, _ in self.account_entries)})

    @property
    def version(self) -> str:
        return denylist_version(self.patterns)

    @property
    def denylist(self) -> Denylist:
        return Denylist(self.patterns)

    def to_json(self) -> dict[str, Any]:
        patterns = self.patterns
        return {"version": denylist_version(patterns), "patterns": patterns}

    def what_to_do(self, entry: str) -> str:
        """How a person lifts `entry`: which list holds it, and how to remove it."""
        ids = [entry_id for pattern, entry_id in self.account_entries if pattern == entry]
        ways = []
        if ids:
            ways.append(
                f"remove '{entry}' from the account's denylist (Settings → Denylist, or "
                f"DELETE /api/v1/denylist/{ids[0]})"
            )
        if entry in self.global_patterns:
            ways.append(
                f"have the server's operator take '{entry}' out of the global denylist "
                "(PHONEFLOW_DENYLIST_FILE)"
            )
        return " or ".join(ways)


def denylist_version(patterns: list[str]) -> str:
    """The version of a list: the first 16 hex digits of the SHA-256 of its sorted, unique patterns."""
    return hashlib.sha256("\n".join(sorted(set(patterns))).encode("utf-8")).hexdigest()[:16]


def effective_entries(session: Session, account_id: str, global_denylist: Denylist) -> EffectiveDenylist:
    """The account's effective denylist (one indexed query for the account's entries)."""
    rows = session.execute(
        select(DenylistEntry.pattern, DenylistEntry.id)
        .where(DenylistEntry.account_id == account_id)
        .order_by(DenylistEntry.pattern)
    ).all()
    return EffectiveDenylist(tuple(global_denylist.entries), tuple((row[0], row[1]) for row in rows))


class DeniedPackages(Conflict):
    """409: a stored workflow version names packages that the denylist now denies (`errors` lists each)."""

    title = "Denied by the package denylist"

    def __init__(self, errors: list[FieldProblem], message: str) -> None:
        super().__init__(message)
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return {**super().body(), "errors": [e.to_json() for e in self.errors]}


def check_version_allowed(
    definition: dict[str, Any], effective: EffectiveDenylist, *, what: str, prefix: str = ""
) -> None:
    """Raise `DeniedPackages` when `definition` (described by `what`, e.g. "version 3 of workflow
    'Shop'") names a package the effective denylist denies; pointers point into the definition."""
    denied = list(denied_packages(definition, effective.denylist))
    if not denied:
        return
    problems = []
    for pointer, package, entry in denied:
        where = _where(definition, pointer)
        problems.append(
            FieldProblem(
                pointer,
                f"{what} names {package} at {pointer}{where}, which the denylist entry '{entry}' denies",
                "take the package out of the workflow (its nodes and targetPackages) and publish a "
                f"version without it, or "
                f"{effective.what_to_do(entry)}",
            )
        )
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise DeniedPackages(problems, f"{prefix}{first.message}{more}: {first.hint}")


def _where(definition: dict[str, Any], pointer: str) -> str:
    parts = pointer.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "nodes" and parts[1].isdigit():
        nodes = definition.get("nodes")
        position = int(parts[1])
        if isinstance(nodes, list) and position < len(nodes) and isinstance(nodes[position], dict):
            return f" (node '{nodes[position].get('id')}')"
    return " (targetPackages)" if parts[0] == "targetPackages" else ""
