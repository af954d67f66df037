"""Housekeeping for pairing: old failed attempts and spent or expired codes are deleted."""

from __future__ import annotations

from datetime import timedelta

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import delete, or_
from sqlalchemy.orm import Session, sessionmaker

from server.db import utcnow
from server.devices.models import PairingCode, PairingFailure
from server.settings import Settings

INTERVAL_S = 600
# Spent codes are kept a day so that "already used" / "expired" can still be told apart.
CODE_KEEP = timedelta(days=1)


def prune_pairing(session_factory: sessionmaker[Session], settings: Settings) -> tuple[int, int]:
    """Delete failures outside the rate-limit window and codes spent or expired a day ago."""
    now = utcnow()
    with session_factory.begin() as session:
        failures = session.execute(
            delete(PairingFailure).where(
                PairingFailure.created_at < now - timedelta(seconds=settings.pairing_failure_window_s)
            )
        )
        codes = session.execute(
            delete(PairingCode).where(
                or_(PairingCode.expires_at < now - CODE_KEEP, PairingCode.used_at < now - CODE_KEEP)
            )
        )
    return failures.rowcount, codes.rowcount  # type: ignore[attr-defined]


def register_jobs(
    scheduler: BaseScheduler, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    scheduler.add_job(
        prune_pairing,
        "interval",
        seconds=INTERVAL_S,
        args=[session_factory, settings],
        id="prune-pairing",
        replace_existing=True,
    )
