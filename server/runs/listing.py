"""Listing runs: filters, sort orders and keyset cursors, shared by `GET /api/v1/runs`, the export
and the dashboard's Runs page.

Every order is a keyset over `(key, id)` with an index whose columns end in that key, so that
"the next page after this cursor" is an index range scan at a million runs:

* `createdAt` — when the run was made (queued, or reported by its device);
* `startedAt` — when it started, or was made while it has not started yet
  (`COALESCE(started_at, created_at)`, an expression index): what the dashboard's "Started"
  column shows;
* `durationMs` — how long it ran (`COALESCE(duration_ms, -1)`: unfinished runs sort as shortest).

`from`/`to` bound the order's own time (the start for `startedAt`, the creation otherwise), which
keeps a date range an index range too.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, tuple_
from sqlalchemy.orm import Session

from interpreter import safe_json
from interpreter.trace import RunStatus
from server.errors import FieldProblem, ValidationFailed
from server.runs.models import Run, duration_key, start_key
from server.runs.sql import input_value_starts_with
from server.schemas import MAX_DURATION_MS, iso_utc_text


class RunSort(StrEnum):
    """The orders of the runs list: a key, descending with a leading `-`."""

    CREATED_DESC = "-createdAt"
    CREATED = "createdAt"
    STARTED_DESC = "-startedAt"
    STARTED = "startedAt"
    DURATION_DESC = "-durationMs"
    DURATION = "durationMs"

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")

    @property
    def key_name(self) -> str:
        return self.value.lstrip("-")

    def key(self) -> ColumnElement[Any]:
        """The SQL expression this order sorts on (matching its index exactly)."""
        if self.key_name == "startedAt":
            return start_key()
        if self.key_name == "durationMs":
            return duration_key()
        return Run.created_at  # type: ignore[return-value]

    def time_key(self) -> ColumnElement[Any]:
        """The time `from`/`to` bound under this order."""
        return start_key() if self.key_name == "startedAt" else Run.created_at  # type: ignore[return-value]

    def key_of(self, run: Run) -> datetime | int:
        """This order's key for a loaded run."""
        if self.key_name == "startedAt":
            return run.started_at or run.created_at
        if self.key_name == "durationMs":
            return -1 if run.duration_ms is None else run.duration_ms
        return run.created_at


DEFAULT_SORT = RunSort.CREATED_DESC
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ID_PREFIX = re.compile(r"^[0-9a-fA-F-]{4,35}$")


@dataclass(frozen=True, slots=True)
class RunFilters:
    """The filters of `GET /api/v1/runs` (and the export); `None` means "any"."""

    status: RunStatus | None = None
    workflow_id: str | None = None
    device_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    trigger: str | None = None
    search: str | None = None

    def narrowed(self, since: datetime | None) -> RunFilters:
        """These filters, starting no earlier than `since` (the export's plan window)."""
        if since is None or (self.since is not None and self.since >= since):
            return self
        return replace(self, since=since)


def filter_conditions(
    session: Session, account_id: str, filters: RunFilters, sort: RunSort = DEFAULT_SORT
) -> list[ColumnElement[bool]]:
    """The WHERE conditions of `filters` for the account's runs under `sort`."""
    conditions: list[ColumnElement[bool]] = [Run.account_id == account_id]
    if filters.status is not None:
        conditions.append(Run.status == filters.status.value)
    if filters.workflow_id is not None:
        conditions.append(Run.workflow_id == filters.workflow_id)
    if filters.device_id is not None:
        conditions.append(Run.device_id == filters.device_id)
    if filters.trigger is not None:
        conditions.append(Run.trigger == filters.trigger)
    if filters.since is not None:
        conditions.append(sort.time_key() >= filters.since)
    if filters.until is not None:
        conditions.append(sort.time_key() < filters.until)
    search = (filters.search or "").strip()
    if search:
        conditions.append(_search_condition(account_id, search))
    return conditions


def _search_condition(account_id: str, search: str) -> ColumnElement[bool]:
    """A whole run id; else the beginning of a run id (4+ hex digits) or of an input value."""
    if _UUID.fullmatch(search):
        return Run.id == search.lower()
    matches_input = input_value_starts_with(account_id, search)
    if _ID_PREFIX.fullmatch(search):
        prefix = search.lower()
        return or_(and_(Run.id >= prefix, Run.id < prefix + "~"), matches_input)
    return matches_input


# --- cursors ---------------------------------------------------------------------------------


def encode_cursor(run: Run, sort: RunSort = DEFAULT_SORT) -> str:
    """An opaque cursor pointing just after `run` in `sort` order."""
    key = sort.key_of(run)
    # Times with microseconds: a cursor must not lose precision, or pages would overlap.
    value = key.isoformat() if isinstance(key, datetime) else key
    raw = json.dumps([sort.value, value, run.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad_cursor(why: str) -> ValidationFailed:
    return ValidationFailed(
        [FieldProblem("query:cursor", why, "pass nextCursor from the previous page, with the same sort")]
    )


# Far beyond any cursor `encode_cursor` makes (a sort name, an ISO time or a number, a run id).
MAX_CURSOR_CHARS = 500


def decode_cursor(cursor: str, sort: RunSort = DEFAULT_SORT) -> tuple[datetime | int, str]:
    """The position a cursor from `encode_cursor` points at; 422 when it is not one of `sort`."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")  # any cursor of ours is far shorter
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sort_name, value, run_id = safe_json.loads(raw)  # a nested forgery is a ValueError, not a crash
        if not isinstance(run_id, str) or not isinstance(sort_name, str):
            raise ValueError("bad cursor")
        key: datetime | int
        if RunSort(sort_name).key_name == "durationMs":
            if not isinstance(value, int) or isinstance(value, bool) or not -1 <= value <= MAX_DURATION_MS:
                raise ValueError("bad cursor")
            key = value
        else:
            key = iso_utc_text(value)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise _bad_cursor("not a cursor this server made") from exc
    if sort_name != sort.value:
        raise _bad_cursor(f"this cursor belongs to sort={sort_name}, not sort={sort.value}")
    return key, run_id


def list_runs(
    session: Session,
    account_id: str,
    filters: RunFilters,
    cursor: str | None,
    limit: int,
    sort: RunSort = DEFAULT_SORT,
) -> tuple[list[Run], str | None]:
    """One page of the account's runs in `sort` order, and the cursor of the next page (or None)."""
    conditions = filter_conditions(session, account_id, filters, sort)
    key = sort.key()
    if cursor is not None:
        value, run_id = decode_cursor(cursor, sort)
        position = tuple_(key, Run.id)
        after = tuple_(value, run_id)
        conditions.append(position < after if sort.descending else position > after)
    order = (key.desc(), Run.id.desc()) if sort.descending else (key.asc(), Run.id.asc())
    runs = list(session.scalars(select(Run).where(and_(*conditions)).order_by(*order).limit(limit + 1)))
    if len(runs) > limit:
        return runs[:limit], encode_cursor(runs[limit - 1], sort)
    return runs, None
