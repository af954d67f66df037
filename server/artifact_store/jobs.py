"""Background work of the artifact store: move bytes stored in the database before the store existed,
and remove objects that no artifact points at."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.artifact_store.service import STORE_INFO_KEY, move_database_blobs, sweep_orphans
from server.artifact_store.store import ArtifactStore, StoreError
from server.db import utcnow
from server.scheduler import stopping
from server.settings import Settings

INTERVAL_S = 600
SWEEP_INTERVAL_S = 3600
_log = logging.getLogger("phoneflow.artifacts")


def move_blobs(
    session_factory: sessionmaker[Session], store: ArtifactStore, should_stop: Callable[[], bool]
) -> int:
    """One pass of `move_database_blobs`; a store that fails is logged and tried again next pass."""
    try:
        moved = move_database_blobs(session_factory, store, should_stop=should_stop)
    except StoreError as exc:
        _log.error("artifacts stored in the database are not moved into the store yet: %s", exc)
        return 0
    if moved:
        _log.info("moved %d artifacts from the database into %s", moved, store.describe())
    return moved


def sweep(
    session_factory: sessionmaker[Session], store: ArtifactStore, should_stop: Callable[[], bool]
) -> int:
    """One pass of `sweep_orphans`; a store or database that fails is logged and tried next pass."""
    try:
        removed = sweep_orphans(session_factory, store, should_stop=should_stop)
    except (StoreError, SQLAlchemyError) as exc:
        _log.error("objects no artifact points at are not swept this time: %s", exc)
        return 0
    if removed:
        _log.info("removed %d objects no artifact points at from %s", removed, store.describe())
    return removed


def register_jobs(
    scheduler: BaseScheduler, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Move old bytes shortly after start, then every `INTERVAL_S` (a no-op once all are moved); sweep
    orphaned objects every `SWEEP_INTERVAL_S`."""
    store = (session_factory.kw.get("info") or {}).get(STORE_INFO_KEY)
    if store is None:
        return
    jobs = (
        (move_blobs, "artifacts.move_database_blobs", INTERVAL_S, timedelta(seconds=5)),
        (sweep, "artifacts.sweep_orphans", SWEEP_INTERVAL_S, timedelta(minutes=5)),
    )
    for job, job_id, every_s, first_after in jobs:
        scheduler.add_job(
            job,
            "interval",
            seconds=every_s,
            args=[session_factory, store, stopping(scheduler)],
            id=job_id,
            next_run_time=utcnow() + first_after,
            replace_existing=True,
        )
