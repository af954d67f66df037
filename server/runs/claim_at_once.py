"""A claim in one statement on PostgreSQL.

A claim looks for the device's next queued run, moves it to `running` with a conditional UPDATE and
writes its `run.updated` event: three round trips (service.claim_run). The look has to come first
only so that a run whose version names a denied package can end `failed` instead of being handed
out. With an empty denylist nothing can be denied, and under another one the versions already
found to name no denied package are known (service.claim_run keeps them per account and denylist
version): the look, the UPDATE (only of a run of such a version), the event (its payload made by
PostgreSQL as `summary_json` makes it) and the NOTIFY are one statement, with the look's very
lookups (the device's own oldest queued run, else the oldest tagged one `FOR UPDATE SKIP LOCKED`)
and the UPDATE's very conditions. When another claimer took the run in between, or its version is
not known to be allowed, the statement writes nothing and says so; the caller then claims the
general way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Row, Table
from sqlalchemy.orm import Session

from interpreter.trace import RunStatus
from server.runs.models import Run, RunEvent
from server.runs.pg_notify import CHANNEL
from server.runs.sql import once_per_transaction, run_row
from server.runs.stored_run import SUMMARY_JSON_SQL

_runs = cast(Table, Run.__table__)
_QUEUED = RunStatus.QUEUED.value
_CLAIMABLE = "(r.not_before IS NULL OR r.not_before <= %(now)s)"

_CLAIM_SQL = f"""
WITH pick AS (
    SELECT found.id, found.device_id IS NULL AS by_tag
    FROM {_runs.name} AS found
    WHERE found.id = COALESCE(
        (SELECT r.id FROM {_runs.name} AS r
            WHERE r.device_id = %(device_id)s AND r.status = '{_QUEUED}' AND {_CLAIMABLE}
            ORDER BY r.created_at, r.id LIMIT 1),
        (SELECT r.id FROM {_runs.name} AS r
            WHERE r.account_id = %(account_id)s AND r.device_tag = ANY(CAST(%(tags)s AS text[]))
                AND r.status = '{_QUEUED}' AND r.device_id IS NULL AND {_CLAIMABLE}
            ORDER BY r.created_at, r.id LIMIT 1 FOR UPDATE SKIP LOCKED))
), claimed AS (
    UPDATE {_runs.name} SET status = '{RunStatus.RUNNING.value}', status_rank = {RunStatus.RUNNING.rank},
        claimed_at = %(now)s, started_at = %(now)s, updated_at = %(now)s, lease_until = %(lease_until)s,
        device_id = %(device_id)s
    FROM pick
    WHERE {_runs.name}.id = pick.id AND {_runs.name}.status = '{_QUEUED}'
        AND (CAST(%(versions)s AS text[]) IS NULL
            OR {_runs.name}.workflow_version_id = ANY(CAST(%(versions)s AS text[])))
        AND CASE WHEN pick.by_tag THEN {_runs.name}.device_id IS NULL
            ELSE {_runs.name}.device_id = %(device_id)s END
    RETURNING {", ".join(f"{_runs.name}.{name}" for name in _runs.c.keys())}
), updated AS (
    INSERT INTO {RunEvent.__tablename__} (account_id, run_id, payload, created_at)
    SELECT account_id, id, {SUMMARY_JSON_SQL}, %(now)s FROM claimed
)
SELECT pick.id AS picked, (SELECT pg_notify('{CHANNEL}', '') FROM claimed) AS notified,
    {", ".join(f"claimed.{name}" for name in _runs.c.keys())}
FROM pick LEFT JOIN claimed ON claimed.id = pick.id
"""
# Sent to the driver as is (psycopg prepares it after a few uses): SQLAlchemy's work per statement cost
# more than PostgreSQL's part. The run's row comes back as `select(Run.__table__)` reads it
# (`sql.run_row`): the answer and its run.updated are made from it.


def claim_at_once(
    session: Session,
    device_id: str,
    account_id: str,
    tags: list[str],
    now: datetime,
    lease_until: datetime | None,
    versions: list[str] | None = None,
) -> Row[Any] | Literal["none", "taken"]:
    """Claim the device's next queued run (PostgreSQL): its row, now `running`, with its run.updated
    event and NOTIFY written; "none" when no run is queued for it; "taken" when another claimer took
    the run first or its workflow version is not one of `versions` (nothing written: claim the
    general way). `versions`: the versions known to name no package the account's denylist denies
    now (None: any, the denylist is empty)."""
    driver: Any = session.connection().connection.driver_connection
    row = driver.execute(
        _CLAIM_SQL,
        {
            "device_id": device_id,
            "account_id": account_id,
            "tags": tags,
            "now": now,
            "lease_until": lease_until,
            "versions": versions,
        },
    ).fetchone()
    if row is None:
        return "none"
    if row[2] is None:  # the claimed run's id: none claimed
        return "taken"
    once_per_transaction(session, "notify")  # the statement's NOTIFY: later writes need none
    return run_row(row[2:])
