"""Background jobs (APScheduler): built here, filled by each domain's `register_jobs`.

A domain that has periodic work exposes
`register_jobs(scheduler: BaseScheduler, settings: Settings, session_factory: sessionmaker[Session]) -> None`
in one of the modules listed in `JOB_MODULES`; a job opens its own session and commits
its own (bounded) transactions, since no request owns them.
"""

from __future__ import annotations

import importlib
import logging

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

from server.settings import Settings

JOB_MODULES = ("server.runs.retention", "server.devices.jobs", "server.schedules.jobs")
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
