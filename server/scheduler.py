"""Background jobs (APScheduler): built here, filled by each domain's `register_jobs`.

A domain that has periodic work exposes
`register_jobs(scheduler: BaseScheduler, settings: Settings, session_factory: sessionmaker[Session]) -> None`
in one of the modules listed in `JOB_MODULES`; a job opens its own session and commits
its own (bounded) transactions, since no request owns them. A job that may run long checks
`stopping(scheduler)` between transactions: at shutdown the app waits for running jobs.

On PostgreSQL one server process of those sharing a database (and schema) runs the jobs, not each of
them (`JobsTurn`): the one holding a session-level advisory lock on a connection of its own. The
others start their scheduler paused and try for the lock every `TURN_RETRY_S`; when the holder
goes, its session ends, the lock with it, and another process takes its turn. Every job is safe to
run in several processes at once (leases, conditional updates) — a takeover overlapping a holder
that lost its connection does no harm; four processes polling for due work did four times the
queries. On SQLite every process runs them, as before (one process is the usual there).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from server.settings import Settings

JOB_MODULES = (
    "server.runs.retention",
    "server.artifact_store.jobs",
    "server.devices.jobs",
    "server.schedules.jobs",
    "server.webhooks.jobs",
    "server.notifications.mailer",
)
_log = logging.getLogger("phoneflow.scheduler")
# How often a process without the jobs' turn tries for it (and the holder checks its connection).
TURN_RETRY_S = 10.0
# The advisory lock of the jobs' turn: one per database and schema (tests and benchmarks share a
# database, each in a schema of its own).
_TRY_TURN = "SELECT pg_try_advisory_lock(hashtext('phoneflow-jobs:' || current_schema()))"


def build_scheduler(settings: Settings, session_factory: sessionmaker[Session]) -> BackgroundScheduler:
    """A scheduler (not yet started) holding every domain's jobs."""
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    for module_name in JOB_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            _log.warning("no jobs from %s: the module is not there", module_name)
            continue
        module.register_jobs(scheduler, settings, session_factory)
    return scheduler


def stopping(scheduler: BaseScheduler) -> Callable[[], bool]:
    """For a long job: true once the scheduler is shutting down (stop at the next batch)."""
    return lambda: bool(scheduler.state == STATE_STOPPED)


def stop_scheduler(scheduler: BaseScheduler) -> None:
    """Stop starting jobs and wait for the running ones to end.

    A running job holds a pooled connection; the app disposes of its engine right after, and a
    connection checked in after that was left open for the garbage collector (the stray psycopg
    connection the test suite saw now and then). Long jobs end early through `stopping()`.
    """
    scheduler.shutdown(wait=True)


def start_scheduler(scheduler: BackgroundScheduler, engine: Engine) -> JobsTurn | None:
    """Start `scheduler`: at once on SQLite; on PostgreSQL paused, running its jobs while this process
    has the jobs' turn (the `JobsTurn` returned; stop it before the scheduler)."""
    if engine.dialect.name != "postgresql":
        scheduler.start()
        return None
    scheduler.start(paused=True)
    turn = JobsTurn(engine, scheduler)
    turn.start()
    return turn


class JobsTurn:
    """A thread holding (or trying for, every `TURN_RETRY_S`) the jobs' advisory lock on a connection of
    its own, running the scheduler's jobs while it holds it."""

    def __init__(self, engine: Engine, scheduler: BackgroundScheduler) -> None:
        url = engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._scheduler = scheduler
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobs-turn", daemon=True)
        self.holding = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    while not self._stop.is_set():
                        if self.holding:
                            conn.execute("SELECT 1")  # the lock lasts as long as this session
                        else:
                            row = conn.execute(_TRY_TURN).fetchone()
                            if row is not None and row[0]:
                                self._take()
                        self._stop.wait(TURN_RETRY_S)
            except psycopg.Error:
                _log.warning(
                    "the background jobs' turn: the database connection failed; retrying", exc_info=True
                )
            finally:
                self._give_up()
            self._stop.wait(TURN_RETRY_S)

    def _take(self) -> None:
        self.holding = True
        if self._scheduler.state != STATE_STOPPED:
            self._scheduler.resume()

    def _give_up(self) -> None:
        if self.holding:
            self.holding = False
            if self._scheduler.state != STATE_STOPPED:
                self._scheduler.pause()
