"""What the analytics read instead of a million runs: a daily rollup of ended runs, and the steps that
failed in them.

* `run_daily_stats`: per account, UTC day (of the run's creation) and final status, by workflow and
  (separately) by device — how many runs, how many with a duration, and the durations' sum. So a
  day has a row per workflow and per device it saw, not one per run. Counted once per run,
  in the transaction that ends it (`lifecycle.runs_ended`): a final status never changes.
  Unfinished runs are few and are read live (the partial index of active runs).
* `run_step_failures`: each failed trace event of an ended run (node, kind, message), written
  with the report that ends the run.

Retention removes both with the runs they count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from interpreter.trace import Outcome
from server.runs.models import RunDailyStat, RunStepFailure
from server.runs.schemas import RunReportIn
from server.runs.sql import dialect_insert

MESSAGE_CHARS = 300
WORKFLOW, DEVICE = "workflow", "device"  # the rollup's two dimensions


def day_key(moment: datetime) -> str:
    """The UTC calendar day of `moment`, `YYYY-MM-DD`."""
    return moment.astimezone(UTC).date().isoformat()


def count_ended(session: Session, account_id: str, runs: Sequence[Row[Any]]) -> None:
    """Add runs that have just ended to the daily rollup (one upsert per group)."""
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
    table = RunDailyStat.__table__
    for key, count in sorted(groups.items()):
        dimension, day, value, status = key
        insert = dialect_insert(session, RunDailyStat).values(
            account_id=account_id,
            dimension=dimension,
            day=day,
            key=value,
            status=status,
            runs=count,
            timed=timed[key],
            duration_sum=durations[key],
        )
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["account_id", "dimension", "day", "key", "status"],
                set_={
                    "runs": table.c.runs + insert.excluded.runs,
                    "timed": table.c.timed + insert.excluded.timed,
                    "duration_sum": table.c.duration_sum + insert.excluded.duration_sum,
                },
            )
        )


def record_step_failures(session: Session, account_id: str, reports: Iterable[RunReportIn]) -> None:
    """Keep the failed steps of runs whose final report this transaction stored."""
    rows = [
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
    if rows:
        session.execute(dialect_insert(session, RunStepFailure).on_conflict_do_nothing(), rows)
