"""`GET /api/v1/runs/export`: the account's runs with traces as one JSON array, streamed.

Memory stays flat however many runs there are: runs are read in keyset-paginated batches
(oldest first by `(created_at, id)`), each batch in its own short transaction, and written
out as they are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from server.db import utcnow
from server.runs.models import Run, TraceEventRow
from server.runs.service import summary_json

BATCH_SIZE = 500


def _batch(
    session: Session, account_id: str, since: datetime, after: tuple[datetime, str] | None
) -> tuple[list[dict[str, Any]], tuple[datetime, str] | None]:
    conditions = [Run.account_id == account_id, Run.created_at >= since]
    if after is not None:
        conditions.append(tuple_(Run.created_at, Run.id) > tuple_(*after))
    runs = list(
        session.scalars(select(Run).where(*conditions).order_by(Run.created_at, Run.id).limit(BATCH_SIZE))
    )
    if not runs:
        return [], None
    traces: dict[str, list[dict[str, Any]]] = {run.id: [] for run in runs}
    events = session.execute(
        select(TraceEventRow.run_id, TraceEventRow.event)
        .where(TraceEventRow.run_id.in_(list(traces)))
        .order_by(TraceEventRow.run_id, TraceEventRow.seq)
    )
    for run_id, event in events:
        traces[run_id].append(event)
    items = [{**summary_json(run), "trace": traces[run.id]} for run in runs]
    last = runs[-1]
    return items, (last.created_at, last.id)


def export_chunks(
    session_factory: sessionmaker[Session], account_id: str, days: int, *, now: datetime | None = None
) -> Iterator[bytes]:
    """The JSON array, piece by piece: `[`, each run with its trace, `]`."""
    since = (now or utcnow()) - timedelta(days=days)
    yield b"["
    first = True
    after: tuple[datetime, str] | None = None
    while True:
        with session_factory() as session:
            items, after = _batch(session, account_id, since, after)
            session.rollback()  # read only: end the transaction (and its lock on SQLite) now
        if not items:
            break
        parts = []
        for item in items:
            parts.append(("" if first else ",") + json.dumps(item, separators=(",", ":")))
            first = False
        yield "".join(parts).encode()
        if len(items) < BATCH_SIZE:
            break
    yield b"]"
