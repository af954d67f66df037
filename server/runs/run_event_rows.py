"""`run_events` rows written by the paths every phone calls at every step (claim, step gate), in one
statement each.

On PostgreSQL the statement also queues the `NOTIFY` that wakes the other processes' hubs at commit
(`server.runs.pg_notify`; its payload says whether a run became `queued`): two round trips in one.
The transaction's later writes that ask for the NOTIFY again are told it is done. (Event ids need no
lock: server/runs/event_order.py.)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, text
from sqlalchemy.orm import Session

from server.runs.models import RunEvent
from server.runs.pg_notify import CHANNEL, notice_of
from server.runs.sql import once_per_transaction

_run_events: Table = RunEvent.__table__  # type: ignore[assignment]

# PostgreSQL: the NOTIFY for the other processes' hubs (delivered at commit) and the rows, in one statement.
_PG_RUN_EVENTS = text(
    "INSERT INTO run_events (account_id, run_id, payload, event, created_at) "
    "SELECT :account_id, :run_id, e->0, e->>1, :created_at "
    f"FROM (SELECT pg_notify('{CHANNEL}', :notice)) AS notified, "
    "json_array_elements(CAST(:events AS json)) AS e"
).bindparams(bindparam("created_at", type_=_run_events.c.created_at.type))


def insert_run_events(
    session: Session,
    account_id: str,
    run_id: str,
    events: list[tuple[dict[str, Any], str | None]],
    now: datetime,
) -> None:
    """Write `(payload, event name)` rows of one run to `run_events` (in this order), with the NOTIFY they
    need. The caller registers its own after-commit wake-up of this process's hub."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        document = json.dumps([[payload, event] for payload, event in events], separators=(",", ":"))
        connection.execute(
            _PG_RUN_EVENTS,
            {
                "account_id": account_id,
                "run_id": run_id,
                "created_at": now,
                "events": document,
                "notice": notice_of(payload for payload, event in events if event is None),
            },
        )
        # What later writes of this transaction would ask for again is done.
        once_per_transaction(session, "notify")
        return
    connection.execute(
        insert(_run_events),
        [
            {"account_id": account_id, "run_id": run_id, "payload": p, "event": e, "created_at": now}
            for p, e in events
        ],
    )
