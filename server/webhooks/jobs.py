"""The webhooks' background jobs: deliver what is due, and look for devices gone offline."""

from __future__ import annotations

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy.orm import Session, sessionmaker

from server.scheduler import stopping
from server.settings import Settings
from server.webhooks.delivery import deliver_due
from server.webhooks.events import notice_offline_devices

OFFLINE_CHECK_S = 30


def register_jobs(
    scheduler: BaseScheduler, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Deliver every `webhook_poll_s` seconds; look for silent devices every 30 s (or sooner when
    `device_offline_after_s` is shorter)."""
    scheduler.add_job(
        lambda: deliver_due(session_factory, settings, should_stop=stopping(scheduler)),
        "interval",
        seconds=settings.webhook_poll_s,
        id="webhooks.deliver",
        replace_existing=True,
    )
    scheduler.add_job(
        notice_offline_devices,
        "interval",
        seconds=min(OFFLINE_CHECK_S, max(1.0, settings.device_offline_after_s / 2)),
        args=[session_factory, settings],
        id="webhooks.device_offline",
        replace_existing=True,
    )
