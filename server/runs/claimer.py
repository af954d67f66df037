"""Who claims: the device of a claim's token and its account's denylist entries, in one statement.

A claim used to read the device by its token hash and then the account's denylist entries: two round
trips to the database before the claim itself. Here the entries come as a JSON array of
`[pattern, id]` pairs beside the device's columns. When the token finds no unrevoked device,
`device_ref` answers, so a bad token gets the same 401 as before. A claim that carries a report also
reads whether the account has a webhook endpoint, as runs.report's device lookup does
(report_device.py): most have none, and the run the report ends then needs no webhook query; on
PostgreSQL it also reads the carried run's stored state as `stored_run.read_stored` would, which the
report is then judged against without a round trip of its own (`stored_run.prefetched`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.orm import Session

from interpreter.denylist import Denylist
from server.auth import DeviceRef, device_ref, device_token_hash
from server.denylist.models import DenylistEntry
from server.denylist.service import EffectiveDenylist, effective_entries
from server.devices.models import Device
from server.runs.json_sql import json_array_agg, json_text_pair
from server.runs.schemas import RunReportIn
from server.runs.stored_run import CARRIED, CARRIED_STATE, prefetched, seq_range
from server.webhooks.service import has_endpoints, note_without_endpoints

_devices: Table = Device.__table__  # type: ignore[assignment]
_entries: Table = DenylistEntry.__table__  # type: ignore[assignment]

_CLAIMER = select(
    _devices.c.id,
    _devices.c.account_id,
    _devices.c.tags,
    select(json_array_agg(json_text_pair(_entries.c.pattern, _entries.c.id)))
    .where(_entries.c.account_id == _devices.c.account_id)
    .scalar_subquery()
    .label("entries"),
).where(_devices.c.token_hash == bindparam("token_hash"), _devices.c.revoked_at.is_(None))
_REPORTING_CLAIMER = _CLAIMER.add_columns(has_endpoints(_devices.c.account_id).label("webhooks"))
# PostgreSQL, with the carried run's stored state (its columns NULL when it is not stored), sent to the
# driver as is (psycopg's `%(name)s` parameters): SQLAlchemy's work per statement costs more than
# PostgreSQL's part.
_PG_CARRYING_CLAIMER = str(
    _REPORTING_CLAIMER.add_columns(*CARRIED_STATE)
    .select_from(_devices.outerjoin(CARRIED, CARRIED.c.id == bindparam("run_id")))
    .compile(dialect=postgresql_psycopg.dialect())  # type: ignore[no-untyped-call]
)


class _Claimer(NamedTuple):
    """A row of `_REPORTING_CLAIMER` as the driver reads it."""

    id: str
    account_id: str
    tags: list[str] | None
    entries: list[list[str]] | None
    webhooks: bool


def claimer(
    session: Session,
    credentials: HTTPAuthorizationCredentials | None,
    global_denylist: Denylist,
    reporting: bool = False,
    carried: RunReportIn | None = None,
) -> tuple[DeviceRef, EffectiveDenylist]:
    """The claiming device (`device_ref`) and its account's effective denylist (`effective_entries`),
    read together; the same 401s when the token does not do. `reporting`: the claim carries a report
    (whether the account has webhooks is read too); `carried`: that report (on PostgreSQL its run's
    stored state is read too, for `read_stored`)."""
    token_hash = device_token_hash(credentials)
    row: Any = None
    if token_hash is not None and carried is not None and session.get_bind().dialect.name == "postgresql":
        seqs = [event.seq for event in carried.trace]
        first, last = seq_range(seqs)
        driver = session.connection().connection.driver_connection
        row = driver.execute(  # type: ignore[union-attr]
            _PG_CARRYING_CLAIMER,
            {"token_hash": token_hash, "run_id": carried.id, "first": first, "last": last},
        ).fetchone()
        if row is not None:
            prefetched(session, carried.id, seqs, row[5:])
            row = _Claimer(*row[:5])
    elif token_hash is not None:
        statement = _REPORTING_CLAIMER if reporting or carried is not None else _CLAIMER
        row = session.connection().execute(statement, {"token_hash": token_hash}).first()
    if row is None:
        device = device_ref(session, credentials)  # raises the 401 that says what is wrong
        return device, effective_entries(session, device.account_id, global_denylist)
    # Patterns are unique per account: sorting by pattern gives `effective_entries`' order.
    entries = sorted((str(pattern), str(entry_id)) for pattern, entry_id in row.entries or ())
    if (reporting or carried is not None) and not row.webhooks:
        note_without_endpoints(session, row.account_id)
    return (
        DeviceRef(row.id, row.account_id, list(row.tags or ())),
        EffectiveDenylist(tuple(global_denylist.entries), tuple(entries)),
    )
