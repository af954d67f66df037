"""A run the server has not stored yet, reported alone: stored by one statement on PostgreSQL.

A phone that made a run itself (offline, on a schedule of its own) reports it with one
`runs.report` per run. Stored the general way that report costs five statements: the run's row,
its trace (COPY), its `run.updated` event and the wake-up of the other processes, and, when the run
has ended, its count in the daily rollup. Here the five are one statement, one round trip and one
parse, built once: every part hangs off the run's `INSERT ... ON CONFLICT (id) DO NOTHING`, so
when the run is stored already (a retried report, a concurrent first one) nothing else is written
and the report goes on as one about a stored run (`report._apply_to_existing`), exactly as before.

What the statement writes is what the general path writes: the row `insert_runs_if_new` would,
the events `insert_trace_rows` would, the `run.updated` payload `service.summary_json` makes of
that row, the rollup rows `rollup.ended_rows` makes of it, and the engine's log the report carries,
as `run_logs.store_logs` writes it. The caller tells `record_changes`, `runs_ended` and `store_logs`
that these parts are written (the run, `Fresh.counted` and `Fresh.logged`); everything else (input
values, failed steps, webhooks, videos, retries) goes on as for any run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from types import SimpleNamespace
from typing import Any, cast

import psycopg
from sqlalchemy import Boolean, ColumnElement, Row, Table, bindparam, exists, literal_column
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.orm import Session

from interpreter.trace import RunStatus
from server.devices.models import Device
from server.runs.models import Run, input_values
from server.runs.pg_notify import CHANNEL, notice_of
from server.runs.rollup import ended_rows, pg_shard, pg_upsert_from, step_failure_rows
from server.runs.schemas import LogEntryIn, RunReportIn
from server.runs.sql import json_time, once_per_transaction
from server.webhooks.service import has_endpoints
from server.workflows.models import Workflow

_runs = cast(Table, Run.__table__)
_COLUMN_NAMES = tuple(_runs.columns.keys())
_COLUMNS = ", ".join(_COLUMN_NAMES)

# %(run)s is the row (json_populate_record fills what it leaves out with null, as the general path's
# json_populate_recordset does), %(events)s `[[seq, event], ...]`, %(payload)s the run.updated
# payload, %(stats)s the rollup rows (`[]` while the run goes on). The NOTIFY, like the other writes,
# happens only for a row this statement inserted (LATERAL on `fresh`). Sent as is to the driver
# (psycopg prepares it after a few uses): SQLAlchemy's work per statement cost more than PostgreSQL's.


def _store_fresh(condition: str = "TRUE", also: str = "") -> str:
    """The statement; the run's row is inserted only where `condition` (SQL on the parameters) holds,
    and `also` adds the writes of more CTEs (each `, name AS (...)`) that hang off it."""
    return f"""
WITH fresh AS (
    INSERT INTO runs ({_COLUMNS})
    SELECT {_COLUMNS} FROM json_populate_record(NULL::runs, %(run)s::json) WHERE {condition}
    ON CONFLICT (id) DO NOTHING
    RETURNING id, account_id
), trace AS (
    INSERT INTO trace_events (run_id, seq, event)
    SELECT fresh.id, (e->>0)::integer, e->1 FROM fresh, json_array_elements(%(events)s::json) AS e
), changed AS (
    INSERT INTO run_events (account_id, run_id, payload, created_at)
    SELECT fresh.account_id, fresh.id, %(payload)s::json, %(now)s
    FROM fresh, LATERAL (SELECT pg_notify('{CHANNEL}', %(notice)s) WHERE fresh.id IS NOT NULL) AS notified
), counted AS (
    {pg_upsert_from("fresh, json_populate_recordset(NULL::run_daily_stats, %(stats)s::json) AS s")}
){also}
SELECT id FROM fresh
"""


_STORE_FRESH = _store_fresh()

_DEVICES = cast(Table, Device.__table__).c
_WORKFLOWS = cast(Table, Workflow.__table__).c
# A report stored in a statement of its own (no transaction around it, lone_report.py) is checked by
# it: the device found by the token's hash is still the one remembered for it, not revoked, and a run
# that ends it is not one whose account has a webhook endpoint to tell (`has_endpoints`). When it is
# not, nothing is written and the report goes the general way, which says what is wrong.
_ALONE_CONDITION = exists().where(
    _DEVICES.id == bindparam("device_id"),
    _DEVICES.account_id == bindparam("account_id"),
    _DEVICES.token_hash == bindparam("token_hash"),
    _DEVICES.revoked_at.is_(None),
) & ~(bindparam("ends", type_=Boolean) & has_endpoints(bindparam("account_id")))
# A run that ends failed or timed out is not one whose workflow retries it (runs/retries.py: a retry
# is queued while the run's attempt, 1 for a new run, is within `auto_retry_max`).
_NOT_RETRIED = ~exists().where(
    _WORKFLOWS.id == bindparam("workflow_id"), _WORKFLOWS.auto_retry_max >= literal_column("1")
)


def _sql(condition: ColumnElement[bool]) -> str:
    return str(condition.compile(dialect=postgresql_psycopg.dialect()))  # type: ignore[no-untyped-call]


# What else a report stored alone may write with its run (what report.ingest_reports writes after the
# insert the general way): its input values for the runs list's search (`insert_input_values`: the
# values `input_values` makes, `%(values)s` a JSON list) and the engine's log of a final report
# (`store_logs`; `%(log)s` its entries as SQLAlchemy's JSON type writes them).
_INPUT_VALUES = """, valued AS (
    INSERT INTO run_input_values (run_id, value, account_id)
    SELECT fresh.id, v, fresh.account_id FROM fresh, json_array_elements_text(%(values)s::json) AS v
    ON CONFLICT DO NOTHING
)"""
_LOG = """, logged AS (
    INSERT INTO run_logs (run_id, entries, created_at) SELECT fresh.id, %(log)s::json, %(now)s FROM fresh
)"""
# The failed steps of a run that ends (`record_step_failures`; %(failures)s its rows as JSON).
_FAILURES = """, failing AS (
    INSERT INTO run_step_failures (run_id, seq, account_id, workflow_id, node_id, kind, message, at)
    SELECT fresh.id, f.seq, f.account_id, f.workflow_id, f.node_id, f.kind, f.message, f.at
    FROM fresh, json_populate_recordset(NULL::run_step_failures, %(failures)s::json) AS f
    ON CONFLICT DO NOTHING
)"""


_STORE_FRESH_LOGGED = _store_fresh(also=_LOG)


@cache
def _store_alone_sql(values: bool, log: bool, failures: bool, retryable: bool) -> str:
    """The statement of `store_alone`, with the writes and checks the report needs: one text per kind
    of report (psycopg prepares each), so that a report plans only what it writes."""
    condition = _ALONE_CONDITION & _NOT_RETRIED if retryable else _ALONE_CONDITION
    also = (_INPUT_VALUES if values else "") + (_LOG if log else "") + (_FAILURES if failures else "")
    return _store_fresh(_sql(condition), also)


class Fresh:
    """A run `store_fresh_run` inserted, with its run.updated event and NOTIFY; `counted`: also its count
    in the daily rollup (it ended); `logged`: also the report's engine log."""

    __slots__ = ("counted", "logged", "row")

    def __init__(self, row: Row[Any], *, counted: bool, logged: bool = False) -> None:
        self.row = row
        self.counted = counted
        self.logged = logged


def store_fresh_run(
    session: Session, report: RunReportIn, values: dict[str, Any], now: datetime
) -> Fresh | None:
    """Insert the run `values` (every column `insert_runs_if_new` would write) with its trace, its
    run.updated event, the report's engine log and, when it has ended, its rollup count, in one
    statement (PostgreSQL only).

    None when the run was stored already: nothing was written, the report is one about a stored run.
    """
    driver = session.connection().connection.driver_connection
    if report.log is None:
        fresh = _store(driver, _STORE_FRESH, report, values, now, {})
    else:
        fresh = _store(driver, _STORE_FRESH_LOGGED, report, values, now, {"log": log_json(report.log)})
    if fresh is not None:
        once_per_transaction(session, "notify")
    return fresh


def log_json(log: Sequence[LogEntryIn]) -> str:
    """A report's engine log as `store_logs` writes it: json.dumps as is, what SQLAlchemy's JSON type
    writes, byte for byte."""
    return json.dumps([entry.stored_form() for entry in log])


def store_alone(
    driver: psycopg.Connection[Any],
    report: RunReportIn,
    values: dict[str, Any],
    now: datetime,
    token_hash: str,
) -> Fresh | None:
    """`store_fresh_run` on a connection in autocommit (the statement is its own transaction), with the
    run's input values, engine log and, when it ends, failed steps (what `ingest_reports` and
    `apply_reports` write after the insert), written only while the token's hash still finds the
    device `values` names, unrevoked, and, when the run has ended, its account has no enabled webhook
    endpoint (whose deliveries the general path enqueues) and, when it ended failed or timed out, its
    workflow retries no run (the general path queues the retry).

    None when nothing was written: the run is stored already, or a condition does not hold."""
    searched = input_values(report.inputs)
    extra: dict[str, Any] = {
        "device_id": values["device_id"],
        "account_id": values["account_id"],
        "token_hash": token_hash,
        "ends": RunStatus(values["status"]).terminal,
    }
    if searched:
        extra["values"] = json.dumps(searched)
    if report.log is not None:
        extra["log"] = log_json(report.log)
    from server.runs.retries import AUTO_RETRY_STATUSES  # retries imports the runs domain's service

    status = RunStatus(values["status"])
    failures = step_failure_rows(values["account_id"], [report]) if status.terminal else []
    if failures:
        extra["failures"] = json.dumps(failures, default=json_time)
    retryable = status.value in AUTO_RETRY_STATUSES
    if retryable:
        extra["workflow_id"] = values["workflow_id"]
    statement = _store_alone_sql(bool(searched), report.log is not None, bool(failures), retryable)
    return _store(driver, statement, report, values, now, extra)


def _store(
    driver: Any,
    statement: str,
    report: RunReportIn,
    values: dict[str, Any],
    now: datetime,
    extra: dict[str, Any],
) -> Fresh | None:
    from server.runs.service import summary_json  # service imports the runs domain's writers

    # The row as the table will hold it (every column; what `values` leaves out is null), with the
    # attributes `summary_json`, `ended_rows` and the runs-ended listeners read of a row of the runs
    # table: the payload and the rollup rows are made before the statement.
    row_like = SimpleNamespace(**{column: values.get(column) for column in _COLUMN_NAMES})
    payload = summary_json(cast(Row[Any], row_like))
    ended = RunStatus(values["status"]).terminal
    stats = ended_rows(values["account_id"], [row_like], pg_shard(driver)) if ended else []
    events = report.trace_pairs_json()  # [[seq, stored_json], ...]
    inserted = driver.execute(
        statement,
        {
            "run": json.dumps(values, default=json_time, separators=(",", ":")),
            "events": events,
            "payload": json.dumps(payload, separators=(",", ":")),
            "now": now,
            "notice": notice_of([payload]),
            "stats": json.dumps(stats, separators=(",", ":")),
            **extra,
        },
    ).fetchone()
    if inserted is None:
        return None
    # The row is what was inserted, column for column: not read back. Listeners read its attributes.
    return Fresh(cast(Row[Any], row_like), counted=ended, logged="log" in extra)
