"""Background jobs (APScheduler): built here, filled by each domain's `register_jobs`.

A domain that has periodic work exposes
`register_jobs(scheduler: BaseScheduler, settings: Settings, session_factory: sessionmaker[Session]) -> None`
in one of the modules listed in `JOB_MODULES`; a job opens its own session and commits
its own (bounded) transactions, since no request owns them. A job that may run long checks
`stopping(scheduler)` between transactions: at shutdown the app waits for running jobs.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
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
