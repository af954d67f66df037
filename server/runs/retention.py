"""Run retention: delete each account's runs older than its `run_retention_days`, their
artifacts' bytes in the artifact store with them.

Deletes in bounded batches, each its own short transaction, so `runs.report` keeps being
served while a large backlog is removed. On SQLite it then gives freed pages back to the
file system (`incremental_vacuum`, WAL checkpoint), so the file does not grow without bound.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from server.accounts.models import Account
from server.approvals.models import Approval
from server.artifact_store.service import delete_keys, keys_of_runs, store_of
from server.artifact_store.store import ArtifactStore
from server.db import utcnow
from server.runs.models import (
    Artifact,
    Run,
    RunDailyStat,
    RunEvent,
    RunInputValue,
    RunLogRow,
    RunStepFailure,
    TraceEventRow,
)
from server.scheduler import stopping
from server.settings import Settings

BATCH_SIZE = 500
INTERVAL_S = 600
VACUUM_PAGES_PER_TRANSACTION = 2000
# Events only serve reconnecting dashboards; they never outlive this, nor their account's window.
EVENT_LOG_DAYS = 7
_log = logging.getLogger("phoneflow.runs.retention")


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one purge removed."""

    runs: int
    run_events: int


def _delete_runs_batch(
    session: Session, account_id: str, cutoff: datetime, batch_size: int, keys: list[str]
) -> int:
    """Delete one batch of expired runs; the store keys of their artifacts are added to `keys`
    (deleted from the store once this transaction has committed)."""
    ids = list(
        session.scalars(
            select(Run.id)
            # Both: a run that reached the server just now is kept, whatever the phone's clock said
            # when it started (a 1970 startedAt made it look 50 years old).
            .where(Run.account_id == account_id, Run.created_at < cutoff, Run.updated_at < cutoff)
            .order_by(Run.created_at)
            .limit(batch_size)
        )
    )
    if ids:
        # Children first: SQLite only cascades with foreign keys on, and explicit is cheaper to reason about.
        session.execute(delete(TraceEventRow).where(TraceEventRow.run_id.in_(ids)))
        keys.extend(keys_of_runs(session, ids))
        session.execute(delete(Artifact).where(Artifact.run_id.in_(ids)))
        session.execute(delete(Approval).where(Approval.run_id.in_(ids)))
        session.execute(delete(RunInputValue).where(RunInputValue.run_id.in_(ids)))
        session.execute(delete(RunStepFailure).where(RunStepFailure.run_id.in_(ids)))
        session.execute(delete(RunLogRow).where(RunLogRow.run_id.in_(ids)))
        session.execute(delete(Run).where(Run.id.in_(ids)))
    return len(ids)


def _delete_events_batch(session: Session, account_id: str, cutoff: datetime, batch_size: int) -> int:
    ids = list(
        session.scalars(
            select(RunEvent.id)
            .where(RunEvent.account_id == account_id, RunEvent.created_at < cutoff)
            .order_by(RunEvent.id)
            .limit(batch_size)
        )
    )
    if ids:
        session.execute(delete(RunEvent).where(RunEvent.id.in_(ids)))
    return len(ids)


def purge_expired_runs(
    session_factory: sessionmaker[Session],
    *,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    should_stop: Callable[[], bool] = lambda: False,
    store: ArtifactStore | None = None,
) -> PurgeReport:
    """Delete every account's expired runs (with trace events and artifacts) and old run events.

    The artifacts' bytes go from `store` (by default the session factory's, `use_store`) after
    each batch's commit. Between batches it stops when `should_stop()` says so (the server shuts
    down); the next pass goes on where this one ended.
    """
    now = now or utcnow()
    with session_factory() as session:
        accounts = session.execute(select(Account.id, Account.run_retention_days)).all()
        session.rollback()
    runs = events = 0
    for account_id, days in accounts:
        run_cutoff = now - timedelta(days=days)
        event_cutoff = now - timedelta(days=min(days, EVENT_LOG_DAYS))
        while not should_stop():
            keys: list[str] = []
            with session_factory.begin() as session:
                removed = _delete_runs_batch(session, account_id, run_cutoff, batch_size, keys)
                run_store = store or (store_of(session) if keys else None)
            if run_store is not None:
                delete_keys(run_store, keys)
            runs += removed
            if removed < batch_size:
                break
        with session_factory.begin() as session:
            # The rollup's days whose runs are all gone (the cutoff's own day keeps its row).
            session.execute(
                delete(RunDailyStat).where(
                    RunDailyStat.account_id == account_id, RunDailyStat.day < run_cutoff.date().isoformat()
                )
            )
        while not should_stop():
            with session_factory.begin() as session:
                removed = _delete_events_batch(session, account_id, event_cutoff, batch_size)
            events += removed
            if removed < batch_size:
                break
    return PurgeReport(runs, events)


def compact_sqlite(engine: Engine) -> None:
    """Give freed pages back (SQLite only): incremental vacuum, then a truncating WAL checkpoint.

    A database made before incremental auto-vacuum was set is converted once with VACUUM.
    """
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        # The driver connection is in autocommit mode (the engine issues BEGIN itself), which
        # PRAGMA auto_vacuum + VACUUM need: VACUUM cannot run inside a transaction.
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        mode = cursor.execute("PRAGMA auto_vacuum").fetchone()[0]
        if mode != 2:
            cursor.execute("PRAGMA auto_vacuum = INCREMENTAL")
            cursor.execute("VACUUM")
        # Each step of the pragma frees one page, and Python's sqlite3 steps a statement
        # without result columns only once: repeat it per free page, in bounded transactions
        # so that reports are not held up behind a long one.
        free_pages = int(cursor.execute("PRAGMA freelist_count").fetchone()[0])
        for start in range(0, free_pages, VACUUM_PAGES_PER_TRANSACTION):
            cursor.execute("BEGIN IMMEDIATE")
            for _ in range(min(VACUUM_PAGES_PER_TRANSACTION, free_pages - start)):
                cursor.execute("PRAGMA incremental_vacuum(1)")
            cursor.execute("COMMIT")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()


def run_retention(
    session_factory: sessionmaker[Session], should_stop: Callable[[], bool] = lambda: False
) -> PurgeReport:
    """One retention pass: purge, then compact (the scheduled job)."""
    report = purge_expired_runs(session_factory, should_stop=should_stop)
    bind = session_factory.kw.get("bind")
    if isinstance(bind, Engine) and not should_stop():
        compact_sqlite(bind)
    if report.runs or report.run_events:
        _log.info("retention removed %d runs and %d run events", report.runs, report.run_events)
    return report


def register_jobs(
    scheduler: BaseScheduler, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Schedule retention every `INTERVAL_S` seconds, first shortly after start."""
    scheduler.add_job(
        run_retention,
        "interval",
        seconds=INTERVAL_S,
        args=[session_factory, stopping(scheduler)],
        id="runs.retention",
        next_run_time=utcnow() + timedelta(seconds=30),
        replace_existing=True,
    )
