"""The schedules' background job: dispatch due schedules every `schedule_poll_s` seconds."""

from __future__ import annotations

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy.orm import Session, sessionmaker

from server.schedules.service import dispatch_due_schedules
from server.settings import Settings


def register_jobs(
    scheduler: BaseScheduler, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Poll for due schedules every `settings.schedule_poll_s` seconds.

    Every server process runs it; the database makes each fire one run (see service._fire).
    The run.updated events reach SSE subscribers through the event table's tail (NOTIFY on
    PostgreSQL, the tail's poll on SQLite).
    """
    scheduler.add_job(
        dispatch_due_schedules,
        "interval",
        seconds=settings.schedule_poll_s,
        args=[session_factory],
        kwargs={"global_denylist": lambda: settings.global_denylist},
        id="schedules.dispatch",
        replace_existing=True,
    )
