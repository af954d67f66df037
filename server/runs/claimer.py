"""Who claims: the device of a claim's token and its account's denylist entries, in one statement.

A claim used to read the device by its token hash and then the account's denylist entries: two round
trips to the database before the claim itself. Here the entries come as a JSON array of
`[pattern, id]` pairs beside the device's columns. When the token finds no unrevoked device,
`device_ref` answers, so a bad token gets the same 401 as before. A claim that carries a report also
reads whether the account has a webhook endpoint, as runs.report's device lookup does
(report_device.py): most have none, and the run the report ends then needs no webhook query.
"""

from __future__ import annotations

from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from interpreter.denylist import Denylist
from server.auth import DeviceRef, device_ref, device_token_hash
from server.denylist.models import DenylistEntry
from server.denylist.service import EffectiveDenylist, effective_entries
from server.devices.models import Device
from server.runs.json_sql import json_array_agg, json_text_pair
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


def claimer(
    session: Session,
    credentials: HTTPAuthorizationCredentials | None,
    global_denylist: Denylist,
    reporting: bool = False,
) -> tuple[DeviceRef, EffectiveDenylist]:
    """The claiming device (`device_ref`) and its account's effective denylist (`effective_entries`),
    read together; the same 401s when the token does not do. `reporting`: the claim carries a report
    (whether the account has webhooks is read too)."""
    token_hash = device_token_hash(credentials)
    statement = _REPORTING_CLAIMER if reporting else _CLAIMER
    row = (
        session.connection().execute(statement, {"token_hash": token_hash}).first()
        if token_hash is not None
        else None
    )
    if row is None:
        device = device_ref(session, credentials)  # raises the 401 that says what is wrong
        return device, effective_entries(session, device.account_id, global_denylist)
    # Patterns are unique per account: sorting by pattern gives `effective_entries`' order.
    entries = sorted((str(pattern), str(entry_id)) for pattern, entry_id in row.entries or ())
    if reporting and not row.webhooks:
        note_without_endpoints(session, row.account_id)
    return (
        DeviceRef(row.id, row.account_id, list(row.tags or ())),
        EffectiveDenylist(tuple(global_denylist.entries), tuple(entries)),
    )
