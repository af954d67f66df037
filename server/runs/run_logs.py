"""A run's execution log: the engine's own (stored from its final report), or one read from the trace.

    source, entries = log_of(session, run, definition)

A bridge sends the engine's log (`interpreter.run_log`) with a run's final `runs.report`; it is
stored here when that report is. Runs without one (reported by an older bridge, ended by the
server, still running) get the log `server.runs.exec_log` reads from their trace and workflow
version: the same entry shape, without times, polls, pauses or values the trace does not hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any, Literal, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.db import utcnow
from server.runs.exec_log import execution_log
from server.runs.models import Run, RunLogRow
from server.runs.schemas import RunReportIn
from server.runs.sql import dialect_name

LogSource = Literal["engine", "trace"]


def store_logs(session: Session, reports: Iterable[RunReportIn]) -> None:
    """Keep the logs of `reports` (those the caller stored); a run's later log replaces its earlier."""
    rows: dict[str, dict[str, Any]] = {}
    now = utcnow()
    for report in reports:
        if report.log is not None:
            entries = [entry.stored_form() for entry in report.log]
            rows[report.id] = {"run_id": report.id, "entries": entries, "created_at": now}
    if not rows:
        return
    # On the connection, past the ORM: every final report of a bridge carries a log.
    session.connection().execute(_upsert(dialect_name(session)), list(rows.values()))


@cache
def _upsert(dialect: str) -> Any:
    """The log's upsert, built once per dialect: a statement built per call was compiled per call
    (its cache key differs with each `.values(...)`), which cost more than the rest of the report."""
    table = cast(Table, RunLogRow.__table__)
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.run_id],
        set_={"entries": statement.excluded.entries, "created_at": statement.excluded.created_at},
    )


def engine_logs(session: Session, run_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The stored engine logs of `run_ids` (those that have one), by run id."""
    if not run_ids:
        return {}
    rows = session.execute(select(RunLogRow.run_id, RunLogRow.entries).where(RunLogRow.run_id.in_(run_ids)))
    return {row.run_id: row.entries for row in rows}


def log_of(
    session: Session,
    run: Run,
    definition: Mapping[str, Any],
    trace: Sequence[Mapping[str, Any]],
    stored: Mapping[str, list[dict[str, Any]]] | None = None,
) -> tuple[LogSource, list[dict[str, Any]]]:
    """The run's log and where it came from: the engine's when stored, else read from the trace.

    `stored` is what `engine_logs` answered for a page of runs (None: look this run up)."""
    logs = stored if stored is not None else engine_logs(session, [run.id])
    entries = logs.get(run.id)
    if entries is not None:
        return "engine", entries
    return "trace", execution_log(definition, trace, run.status, run.error_message)


def variables_of(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The variables as they changed, in order: `{name, value, step, nodeId, atMs}` per `var-set`."""
    changes: list[dict[str, Any]] = []
    for entry in entries:
        if entry.get("kind") != "var-set":
            continue
        values = entry.get("values") or {}
        changes.append(
            {
                "name": values.get("name"),
                "value": values.get("value"),
                "step": entry.get("step"),
                "nodeId": entry.get("nodeId"),
                "atMs": entry.get("atMs"),
            }
        )
    return changes
