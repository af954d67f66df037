"""Cross-process wake-ups on PostgreSQL: `NOTIFY` in the writing transaction, `LISTEN` in each hub.

PostgreSQL delivers a `NOTIFY` only when its transaction commits, so a wake-up can never
precede the data. Each server process keeps one listening connection in a thread and wakes
its event tail on every notification; the tail then reads the new `run_events` rows. Without
this, another process's events would wait for the tail's next poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from server.runs.sql import once_per_transaction

CHANNEL = "phoneflow_run_events"
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', '')")
_log = logging.getLogger("phoneflow.runs.events")


def notify_on_commit(session: Session) -> None:
    """Queue a wake-up for every hub; PostgreSQL sends it when this transaction commits."""
    # One per transaction: PostgreSQL folds equal notifications of a transaction into one anyway.
    if session.get_bind().dialect.name == "postgresql" and once_per_transaction(session, "notify"):
        session.execute(_NOTIFY)


class Listener:
    """A thread that calls `wake()` for every notification on `CHANNEL` (PostgreSQL only)."""

    def __init__(self, engine: Engine, wake: Callable[[], None]) -> None:
        url = engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="run-events-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._wake()  # anything committed while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake()
            except psycopg.Error:
                # The tail still polls; listen again after a pause.
                _log.warning("listening for run events failed; retrying", exc_info=True)
                self._stop.wait(2.0)
