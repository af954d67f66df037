"""What the analytics read instead of a million runs: a daily rollup of ended runs, and the steps that
failed in them.

* `run_daily_stats`: per account, UTC day (of the run's creation) and final status, by workflow and
  (separately) by device — how many runs, how many with a duration, and the durations' sum, spread
  over up to `SHARDS` rows that readers add up. So a
  day has a row per workflow and per device it saw, not one per run. Counted once per run,
  in the transaction that ends it (`lifecycle.runs_ended`): a final status never changes.
  Unfinished runs are few and are read live (the partial index of active runs).
* `run_step_failures`: each failed trace event of an ended run (node, kind, message), written
  with the report that ends the run.

Retention removes both with the runs they count.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from interpreter.trace import Outcome
from server.runs.models import RunDailyStat, RunStepFailure
from server.runs.schemas import RunReportIn
from server.runs.sql import dialect_insert, dialect_name

MESSAGE_CHARS = 300
# A day's count of one workflow (or device) and status is kept in up to this many rows on PostgreSQL,
# one per writing connection modulo SHARDS: transactions ending runs of one workflow at once then
# rarely wait for each other's row lock, which is held until commit (the disk flush included).
SHARDS = 16
WORKFLOW, DEVICE = "workflow", "device"  # the rollup's two dimensions


def day_key(moment: datetime) -> str:
    """The UTC calendar day of `moment`, `YYYY-MM-DD`."""
    return moment.astimezone(UTC).date().isoformat()


class EndedRun(Protocol):
    """What the rollup reads of a run that ended (a row of the runs table, or the values of one)."""

    created_at: datetime
    workflow_id: str
    device_id: str | None
    status: str
    duration_ms: int | None


def count_ended(session: Session, account_id: str, runs: Sequence[EndedRun]) -> None:
    """Add runs that have just ended to the daily rollup (one upsert per group)."""
    rows = ended_rows(account_id, runs, shard_of(session))
    if not rows:
        return
    # One statement built once per dialect, on the connection, the groups in key order: concurrent
    # writers of one shard lock its rows in one order. PostgreSQL gets the rows as one JSON document
    # (one execution), SQLite through executemany.
    if dialect_name(session) == "postgresql":
        driver = session.connection().connection.driver_connection
        driver.execute(_PG_UPSERT, {"rows": json.dumps(rows, separators=(",", ":"))})  # type: ignore[union-attr]
    else:
        session.connection().execute(_SQLITE_UPSERT, rows)


def ended_rows(account_id: str, runs: Iterable[EndedRun], shard: int) -> list[dict[str, Any]]:
    """The rollup rows (to add to the stored ones) of runs that have just ended, in key order."""
    groups: Counter[tuple[str, str, str, str]] = Counter()
    timed: Counter[tuple[str, str, str, str]] = Counter()
    durations: Counter[tuple[str, str, str, str]] = Counter()
    for run in runs:
        day = day_key(run.created_at)
        for key in (
            (WORKFLOW, day, run.workflow_id, run.status),
            (DEVICE, day, run.device_id or "", run.status),
        ):
            groups[key] += 1
            if run.duration_ms is not None:
                timed[key] += 1
                durations[key] += int(run.duration_ms)
    return [
        {
            "account_id": account_id,
            "dimension": dimension,
            "day": day,
            "key": value,
            "status": status,
            "runs": count,
            "timed": timed[(dimension, day, value, status)],
            "duration_sum": durations[(dimension, day, value, status)],
            "shard": shard,
        }
        for (dimension, day, value, status), count in sorted(groups.items())
    ]


def shard_of(session: Session) -> int:
    """This transaction's shard: its PostgreSQL connection's backend pid modulo SHARDS (no round trip),
    so two transactions at once never wait for the same row unless their pids collide."""
    if dialect_name(session) != "postgresql":
        return 0  # SQLite: one writer at a time anyway
    return pg_shard(session.connection().connection.driver_connection)


def pg_shard(driver: Any) -> int:
    """The shard of a psycopg connection's transactions: its backend pid modulo SHARDS."""
    return int(driver.info.backend_pid) % SHARDS


def pg_upsert_from(source: str) -> str:
    """PostgreSQL: add the rollup rows `s` of `source` (a FROM list, its rows as `run_daily_stats` rows
    named s) to the stored ones, in key order (writers of one shard lock its rows in one order)."""
    return (
        "INSERT INTO run_daily_stats "
        "(account_id, dimension, day, key, status, runs, timed, duration_sum, shard) "
        "SELECT s.account_id, s.dimension, s.day, s.key, s.status, s.runs, s.timed, s.duration_sum, s.shard "
        f"FROM {source} ORDER BY s.dimension, s.day, s.key, s.status "
        "ON CONFLICT (account_id, dimension, day, key, status, shard) DO UPDATE SET "
        "runs = run_daily_stats.runs + EXCLUDED.runs, timed = run_daily_stats.timed + EXCLUDED.timed, "
        "duration_sum = run_daily_stats.duration_sum + EXCLUDED.duration_sum"
    )


# Sent to the driver as is: it ends every run.
_PG_UPSERT = pg_upsert_from("json_populate_recordset(NULL::run_daily_stats, %(rows)s::json) AS s")


def _sqlite_upsert() -> Any:
    table = cast(Table, RunDailyStat.__table__)
    insert = sqlite.insert(table)
    return insert.on_conflict_do_update(
        index_elements=["account_id", "dimension", "day", "key", "status", "shard"],
        set_={
            "runs": table.c.runs + insert.excluded.runs,
            "timed": table.c.timed + insert.excluded.timed,
            "duration_sum": table.c.duration_sum + insert.excluded.duration_sum,
        },
    )


_SQLITE_UPSERT = _sqlite_upsert()


def record_step_failures(session: Session, account_id: str, reports: Iterable[RunReportIn]) -> None:
    """Keep the failed steps of runs whose final report this transaction stored."""
    rows = step_failure_rows(account_id, reports)
    if rows:
        session.execute(dialect_insert(session, RunStepFailure).on_conflict_do_nothing(), rows)


def step_failure_rows(account_id: str, reports: Iterable[RunReportIn]) -> list[dict[str, Any]]:
    """The `run_step_failures` rows of these final reports' failed steps."""
    return [
        {
            "run_id": report.id,
            "seq": event.seq,
            "account_id": account_id,
            "workflow_id": report.workflow_id,
            "node_id": event.node_id,
            "kind": event.kind,
            "message": (event.message or "")[:MESSAGE_CHARS],
            "at": datetime.fromisoformat(event.started_at.replace("Z", "+00:00")),
        }
        for report in reports
        for event in report.trace
        if event.outcome is Outcome.FAILED
    ]
