"""What else happens when runs end: other domains listen here instead of the runs domain calling them.

`runs_ended(session, account_id, run_ids)` is called, inside the transaction that ends them, for
runs that have just reached a final status (a `runs.report` that stored a final status, a cancel
of a queued run). A final status never changes, so each run ends once: it is added to the
analytics' daily rollup here. Listeners (webhooks
enqueue their deliveries) run in the same transaction: what they write commits with the end of
the run or not at all. `phoneflow_runs_finished_total` counts after the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from server.db import after_commit
from server.metrics import FINISHED_RUNS
from server.runs.models import Run
from server.runs.rollup import count_ended

RunsEndedListener = Callable[[Session, str, Sequence[Row[Any]]], None]
_listeners: list[RunsEndedListener] = []


def on_runs_ended(listener: RunsEndedListener) -> RunsEndedListener:
    """Call `listener(session, account_id, runs)` for runs that end (a decorator; once per listener)."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def listeners() -> tuple[RunsEndedListener, ...]:
    """The listeners called when runs end (lone_report.py takes only runs whose listeners it knows)."""
    return tuple(_listeners)


def runs_ended(
    session: Session,
    account_id: str,
    run_ids: Sequence[str],
    rows: Mapping[str, Row[Any]] | None = None,
    *,
    counted: Collection[str] = (),
) -> None:
    """These runs of the account have just ended (in this transaction): tell the listeners.

    `rows`: the runs' rows as this transaction left them, when the caller has read them already.
    `counted`: runs this transaction has added to the daily rollup already (fresh_run.py)."""
    if not run_ids:
        return
    unique_ids = list(dict.fromkeys(run_ids))
    if rows is not None and all(run_id in rows for run_id in unique_ids):
        runs = [rows[run_id] for run_id in unique_ids]
    else:
        session.flush()
        runs = list(session.execute(select(Run.__table__).where(Run.__table__.c.id.in_(unique_ids))).all())
    statuses = [run.status for run in runs]
    count_ended(session, account_id, [run for run in runs if run.id not in counted])
    for listener in _listeners:
        listener(session, account_id, runs)
    after_commit(session, lambda: _count(statuses))


def _count(statuses: list[str]) -> None:
    for status in statuses:
        FINISHED_RUNS.labels(status).inc()
