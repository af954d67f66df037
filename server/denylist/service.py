"""The package denylist: the global list from settings plus each account's own entries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from interpreter.denylist import Denylist
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
