"""A report of a run the server has stored: the one read it is judged against, the one write that stores it.

runs.report and the step gate take every report of a moving run this way (a run the server queued
and a phone claimed is stored before its first report), so each is one statement built once as
SQLAlchemy Core:

* `read_stored`: the run's row and, in the same row, its stored trace events at the seqs the report
  carries (a JSON array), instead of a second round trip for the events;
* `store_newer`: the compare-and-set UPDATE (`STORE_NEWER`, docs in server/runs/report.py) with the
  run's row coming back; on PostgreSQL the new trace events go in by the same statement (a
  data-modifying WITH: they are inserted only when the UPDATE matched), on SQLite by a second one.
  `(run_id, seq)` is the key, so a stored event is never replaced. A report written with its
  run.updated event (runs.report's, and a claim's carried one, on PostgreSQL) also writes the
  engine's log it carries (`run_logs.store_logs`' upsert) and, when it ends the run, the run's
  count in the daily rollup (`rollup.count_ended`'s rows, made by PostgreSQL from the updated row)
  in that statement: a final report is then one round trip instead of three.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    Row,
    String,
    Table,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from interpreter.trace import TERMINAL_STATUSES, RunStatus
from server.runs.events import RUN_STEP as RUN_STEP_EVENT
from server.runs.json_sql import json_array_agg, json_pair
from server.runs.models import Run, RunEvent, TraceEventRow
from server.runs.pg_notify import CHANNEL
from server.runs.rollup import DEVICE, WORKFLOW, pg_shard, pg_upsert_from
from server.runs.sql import insert_trace_rows, once_per_transaction, run_row


@dataclass(frozen=True, slots=True)
class Stored:
    """What `store_newer` wrote: the run's row after the write; `logged`: the engine's log went with it;
    `counted`: the run's count in the daily rollup went with it (the write ended the run)."""

    row: Row[Any]
    logged: bool = False
    counted: bool = False


@dataclass(frozen=True, slots=True)
class StoredRun:
    """The part of a stored run a report is judged against."""

    status: RunStatus
    trace_len: int
    account_id: str
    device_id: str | None
    workflow_version_id: str


# Columns a report may leave out (null) and the stored row keeps: a claim set startedAt, say.
KEPT_WHEN_LEFT_OUT = (
    "started_at",
    "ended_at",
    "duration_ms",
    "error_message",
    "n_steps",
    "n_failed",
    "n_retries",
)

_runs: Table = Run.__table__  # type: ignore[assignment]
_trace: Table = TraceEventRow.__table__  # type: ignore[assignment]
RUN_EVENTS = RunEvent.__tablename__


def _kept_unless_sent(column: str) -> Any:
    """`SET column = COALESCE(:p_column, column)`: what a report leaves out keeps its stored value."""
    return func.coalesce(bindparam(f"p_{column}", type_=_runs.c[column].type), _runs.c[column])


# A newer report of a stored run, written only over the state it was judged against (compare-and-set
# on status and trace length, and the monotone guard `status_rank <= :new AND trace_len <= :new_len`);
# the row comes back (run.updated's payload and the gate's answer are written from it).
STORE_NEWER = (
    update(_runs)
    .where(
        _runs.c.id == bindparam("p_run_id"),
        _runs.c.status == bindparam("p_old_status"),
        _runs.c.trace_len == bindparam("p_old_len"),
        _runs.c.status_rank <= bindparam("p_rank"),
        _runs.c.trace_len <= bindparam("p_trace_len"),
    )
    .values(
        status=bindparam("p_status"),
        status_rank=bindparam("p_status_rank"),
        trace_len=bindparam("p_trace_len"),
        device_id=bindparam("p_device_id"),
        updated_at=bindparam("p_now", type_=_runs.c.updated_at.type),
        **{column: _kept_unless_sent(column) for column in KEPT_WHEN_LEFT_OUT},
    )
    .returning(*_runs.c)
)


def _store_newer_with_events() -> Any:
    """PostgreSQL: `WITH changed AS (STORE_NEWER), added AS (INSERT the events of :p_events for the run
    `changed` returned) SELECT * FROM changed`. `:p_events` is a JSON array of `[seq, event]`."""
    changed = STORE_NEWER.cte("changed")
    element = (
        func.json_array_elements(cast(bindparam("p_events", type_=String()), JSON))
        .table_valued("value")
        .alias("e")
    )
    rows = (
        select(
            changed.c.id,
            cast(element.c.value.op("->>")(literal_column("0")), Integer),
            element.c.value.op("->")(literal_column("1")),
        )
        .select_from(changed)
        .join(element, literal_column("true"))
    )
    added = (
        postgresql.insert(_trace)
        .from_select(["run_id", "seq", "event"], rows)
        .on_conflict_do_nothing(index_elements=["run_id", "seq"])
        .cte("added")
    )
    return select(changed).add_cte(added)


STORE_NEWER_WITH_EVENTS = _store_newer_with_events()


def _state_of(run: Any) -> tuple[Any, ...]:
    """What a report of a stored run is judged against, read from `run` (the runs table or an alias of
    it): the run's row and, as a JSON array of `[seq, event]` (NULL on PostgreSQL when there are none),
    its stored events between `first` and `last`."""
    return (
        run.c.status,
        run.c.trace_len,
        run.c.account_id,
        run.c.device_id,
        run.c.workflow_version_id,
        select(json_array_agg(json_pair(_trace.c.seq, _trace.c.event)))
        .where(_trace.c.run_id == run.c.id, _trace.c.seq.between(bindparam("first"), bindparam("last")))
        .scalar_subquery(),
    )


*_ROW, _EVENTS = _state_of(_runs)
_STORED_STATE = select(*_ROW, _EVENTS.label("events")).where(_runs.c.id == bindparam("run_id"))


# `_STORED_STATE` as PostgreSQL reads it, sent to the driver as is (psycopg prepares it after a few
# uses): every report of a moving run reads it, and SQLAlchemy's work per statement cost more than
# PostgreSQL's part. Its columns are plain text, integers and JSON: nothing for SQLAlchemy to convert.
_PG_STORED_STATE = f"""
SELECT r.status, r.trace_len, r.account_id, r.device_id, r.workflow_version_id,
    (SELECT json_agg(json_build_array(t.seq, t.event)) FROM {_trace.name} AS t
        WHERE t.run_id = r.id AND t.seq BETWEEN %(first)s AND %(last)s) AS events
FROM {_runs.name} AS r
WHERE r.id = %(run_id)s
"""


def seq_range(seqs: Sequence[int]) -> tuple[int, int]:
    """The first and the last of a report's seqs (in order): the stored events `read_stored` reads."""
    return (seqs[0], seqs[-1]) if seqs else (1, 0)


# The carried run's columns `read_stored` reads (the run aliased `carried`, its events between `first`
# and `last`), for a statement that reads them beside others (claimer.py).
CARRIED = _runs.alias("carried")
CARRIED_STATE = _state_of(CARRIED)

_PREFETCHED = "phoneflow_prefetched_stored"
Found = tuple[StoredRun, dict[int, dict[str, Any]]]


def prefetched(session: Session, run_id: str, seqs: Sequence[int], state: Sequence[Any]) -> None:
    """The state of `run_id` at `seqs` (`CARRIED_STATE`'s columns) was read by this transaction's
    statement a moment ago: the next `read_stored` of them in this transaction answers it without a
    query. Only a run found is remembered (None: its row was missing; a read of it goes to the
    database: a report that inserts it meanwhile must be found)."""
    found = _found(state)
    if found is not None:
        session.info[_PREFETCHED] = (session.get_transaction(), run_id, seq_range(seqs), found)


def read_stored(session: Session, run_id: str, seqs: Sequence[int]) -> Found | None:
    """The stored run `run_id` and its stored events from the first to the last of `seqs` (the seqs a
    report carries, in order), by seq; None when the run is not stored."""
    first, last = seq_range(seqs)
    kept = session.info.pop(_PREFETCHED, None)
    if kept is not None and kept[:3] == (session.get_transaction(), run_id, (first, last)):
        found: Found = kept[3]
        return found
    params = {"run_id": run_id, "first": first, "last": last}
    connection = session.connection()
    row: Any
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        row = driver.execute(_PG_STORED_STATE, params).fetchone()  # type: ignore[union-attr]
    else:
        row = connection.execute(_STORED_STATE, params).first()
    return None if row is None else _found(row)


def _found(state: Sequence[Any]) -> Found | None:
    status, trace_len, account_id, device_id, workflow_version_id, events = state
    if status is None:
        return None
    stored = StoredRun(RunStatus(status), trace_len, account_id, device_id, workflow_version_id)
    return stored, {int(seq): event for seq, event in (events or ())}


def store_newer(
    session: Session, params: Mapping[str, Any], run_id: str, events: Sequence[tuple[int, str]]
) -> Row[Any] | None:
    """Run `STORE_NEWER` with `params` and, when it matched, insert `events` (`(seq, event JSON text)`) of
    `run_id` unless stored: the run's row after the write, or None when another writer moved it first
    (then nothing is written)."""
    connection = session.connection()
    if events and connection.dialect.name == "postgresql":
        document = "[" + ",".join(f"[{seq},{event}]" for seq, event in events) + "]"
        return connection.execute(STORE_NEWER_WITH_EVENTS, {**params, "p_events": document}).first()
    changed = connection.execute(STORE_NEWER, params).first()
    if changed is not None and events:
        insert_trace_rows(session, [(run_id, seq, event) for seq, event in events])
    return changed


def store_recorded_pg(
    session: Session, params: Mapping[str, Any], events: Sequence[tuple[int, str]], log: str | None
) -> Stored | None:
    """`store_newer` on PostgreSQL with the run.updated event of the row and its NOTIFY written by the same
    statement, and so the engine's log `log` (its entries' JSON as `run_logs.store_logs` writes it; None:
    the report has none) and, when the write ends the run, its count in the daily rollup: what was
    written, or None when another writer moved the run first (then nothing is written). The caller
    tells `record_changes` (`written`), `store_logs` and `runs_ended` (`counted`) what is written
    already, and registers the after-commit wake-up."""
    driver: Any = session.connection().connection.driver_connection
    ends = RunStatus(params["p_status"]).terminal
    values = {
        **params,
        "p_events": "[" + ",".join(f"[{seq},{event}]" for seq, event in events) + "]",
        "step": None,
    }
    if log is not None:
        values["log"] = log
    if ends:
        values["shard"] = pg_shard(driver)
    changed = driver.execute(_pg_store_recorded(log is not None, ends), values).fetchone()
    if changed is None:
        return None
    once_per_transaction(session, "notify")  # the statement's NOTIFY: later writes need none
    return Stored(run_row(changed), logged=log is not None, counted=ends)


def _utc_ms_sql(column: str) -> str:
    """`sql.utc_ms` of a timestamp column in SQL: ISO-8601 UTC, milliseconds (truncated, as utc_ms), `Z`."""
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


# `service.summary_json` of a row of `changed` (the run.updated payload), built by PostgreSQL.
_SUMMARY_FIELDS = {
    "id": "id",
    "workflowId": "workflow_id",
    "workflowVersionId": "workflow_version_id",
    "deviceId": "device_id",
    "status": "status",
    "trigger": "trigger",
    "triggeredBy": "triggered_by",
    "inputs": "inputs",
    "startedAt": _utc_ms_sql("started_at"),
    "endedAt": _utc_ms_sql("ended_at"),
    "durationMs": "duration_ms",
    "errorMessage": "error_message",
    "nSteps": "n_steps",
    "nFailed": "n_failed",
    "nRetries": "n_retries",
    "traceLen": "trace_len",
    "cancelRequested": "cancel_requested_at IS NOT NULL",
    "retryOf": "retry_of",
    "attempt": "attempt",
    "notBefore": _utc_ms_sql("not_before"),
    "batchId": "batch_id",
    "deviceTag": "device_tag",
    "createdAt": _utc_ms_sql("created_at"),
    "updatedAt": _utc_ms_sql("updated_at"),
}
SUMMARY_JSON_SQL = "json_build_object(" + ", ".join(f"'{k}', {v}" for k, v in _SUMMARY_FIELDS.items()) + ")"


def _pg_write(*, final: str, also: str = "") -> str:
    """PostgreSQL's write of a newer report of a stored run with its events, in one statement (psycopg's
    `%(name)s` parameters): `STORE_NEWER`'s compare-and-set UPDATE (its parameters), the new trace
    events (`%(p_events)s`, `[[seq, event], ...]`), the run.updated event (its payload `summary_json`
    of the updated row, made by PostgreSQL), the `run.step` event of the step about to start
    (`%(step)s`, NULL: none) when the run may start it (moving, no cancel asked), and the NOTIFY: all
    only when the UPDATE matched. `final`: what the statement returns of `changed` (the updated row);
    `also`: more CTEs (each `, name AS (...)`) that hang off `changed`."""
    kept = ", ".join(f"{column} = COALESCE(%(p_{column})s, {column})" for column in KEPT_WHEN_LEFT_OUT)
    step_statuses = ", ".join(
        f"'{status.value}'" for status in (RunStatus.RUNNING, RunStatus.WAITING_FOR_APPROVAL)
    )
    return f"""
WITH changed AS (
    UPDATE {_runs.name} SET status = %(p_status)s, status_rank = %(p_status_rank)s,
        trace_len = %(p_trace_len)s, device_id = %(p_device_id)s, updated_at = %(p_now)s, {kept}
    WHERE id = %(p_run_id)s AND status = %(p_old_status)s AND trace_len = %(p_old_len)s
        AND status_rank <= %(p_rank)s AND trace_len <= %(p_trace_len)s
    RETURNING *
), added AS (
    INSERT INTO {_trace.name} (run_id, seq, event)
    SELECT changed.id, CAST(e->>0 AS integer), e->1
    FROM changed, json_array_elements(CAST(%(p_events)s AS json)) AS e
    ON CONFLICT (run_id, seq) DO NOTHING
), written AS (
    INSERT INTO {RUN_EVENTS} (account_id, run_id, payload, event, created_at)
    SELECT account_id, id, payload, event, %(p_now)s FROM (
        SELECT 1 AS place, changed.account_id, changed.id, {SUMMARY_JSON_SQL} AS payload, NULL AS event
        FROM changed
        UNION ALL
        SELECT 2, changed.account_id, changed.id, CAST(%(step)s AS json), '{RUN_STEP_EVENT}'
        FROM changed
        WHERE CAST(%(step)s AS json) IS NOT NULL AND changed.cancel_requested_at IS NULL
            AND changed.status IN ({step_statuses})
        ORDER BY place
    ) AS events
){also}
SELECT {final}
FROM changed, LATERAL (
    SELECT pg_notify('{CHANNEL}', CASE WHEN changed.status = 'queued' THEN 'queued' ELSE '' END)
) AS notified
"""


# The step gate's: the gate answers from the run's status and cancel_requested_at.
_PG_STORE_PROGRESS = _pg_write(final="changed.status, changed.cancel_requested_at")
# The engine's log of the report (`%(log)s`: its entries' JSON), as `run_logs.store_logs` upserts it.
_LOGGED = """, logged AS (
    INSERT INTO run_logs (run_id, entries, created_at)
    SELECT changed.id, CAST(%(log)s AS json), %(p_now)s FROM changed
    ON CONFLICT (run_id) DO UPDATE SET entries = EXCLUDED.entries, created_at = EXCLUDED.created_at
)"""
# The rollup count of a run the write ended (`rollup.ended_rows` of the updated row: by device, then by
# workflow, on the UTC day of its creation, in this connection's shard `%(shard)s`), as
# `rollup.count_ended` adds it: the groups in key order.
_TERMINAL = ", ".join(f"'{status.value}'" for status in sorted(TERMINAL_STATUSES, key=lambda s: s.value))
_ENDED_ROWS = f"""(
    SELECT changed.account_id, d.dimension,
        to_char(changed.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, d.key, changed.status,
        1 AS runs, CASE WHEN changed.duration_ms IS NULL THEN 0 ELSE 1 END AS timed,
        COALESCE(changed.duration_ms, 0) AS duration_sum, CAST(%(shard)s AS smallint) AS shard
    FROM changed, LATERAL (VALUES ('{DEVICE}', COALESCE(changed.device_id, '')),
        ('{WORKFLOW}', changed.workflow_id)) AS d(dimension, key)
    WHERE changed.status IN ({_TERMINAL})
) AS s"""
_COUNTED = f"""
, counted AS (
    {pg_upsert_from(_ENDED_ROWS)}
)"""


@cache
def _pg_store_recorded(log: bool, ends: bool) -> str:
    """runs.report's write: the whole row comes back (runs_ended's listeners and the cancel look read it,
    as `sql.run_row` makes it); `log`: with the engine's log (`%(log)s`); `ends`: with the rollup count
    of a run it ends. One text per kind, sent to the driver as is (psycopg prepares each): SQLAlchemy's
    work per statement cost more than PostgreSQL's part."""
    also = (_LOGGED if log else "") + (_COUNTED if ends else "")
    return _pg_write(final=", ".join(f"changed.{column}" for column in _runs.c.keys()), also=also)


def store_progress_pg(
    session: Session, params: Mapping[str, Any], events: Sequence[tuple[int, str]], step: str | None
) -> tuple[str, Any] | None:
    """`_PG_STORE_PROGRESS` with `STORE_NEWER`'s `params`, the new `events` (`(seq, event JSON text)`) and
    the `run.step` payload `step` (JSON text, or None): `(status, cancel_requested_at)` of the run after
    the write, or None when another writer moved it first (then nothing is written). The caller
    registers the after-commit wake-up."""
    document = "[" + ",".join(f"[{seq},{event}]" for seq, event in events) + "]"
    driver = session.connection().connection.driver_connection
    row = driver.execute(  # type: ignore[union-attr]
        _PG_STORE_PROGRESS, {**params, "p_events": document, "step": step}
    ).fetchone()
    if row is None:
        return None
    once_per_transaction(session, "notify")  # the statement's NOTIFY: later writes need none
    return row[0], row[1]
