"""Cross-process wake-ups on PostgreSQL: `NOTIFY` in the writing transaction, `LISTEN` in each hub.

PostgreSQL delivers a `NOTIFY` only when its transaction commits, so a wake-up can never
precede the data. Each server process keeps one listening connection in a thread and wakes
its event tail on every notification; the tail then reads the new `run_events` rows. Without
this, another process's events would wait for the tail's next poll.

A notification's payload says what it announces: `QUEUED` when the transaction made a run `queued`
(what the bridges' wake-up polls wait for), `""` for anything else (a step, progress, a frame, a
phone's health). A process in which only wake-up polls listen reads its tail at `QUEUED` alone:
at every step of every run, the other notifications would make every process read rows nobody in
it wants. A write that makes a run `queued` therefore says so: `notice_of` gives the payload for
the `run.updated` payloads it writes (service.record_changes, run_event_rows.insert_run_events).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from server.runs.sql import once_per_transaction

CHANNEL = "phoneflow_run_events"
# The payload of a notification whose transaction made a run `queued`; others carry "".
QUEUED = "queued"
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', '')")
# While nothing is notified, the listening thread looks at its stop flag this often; `Listener.stop`
# wakes it at once with a notification on a channel of its own. (It looked every second: on a
# virtual machine each wake-up of an idle thread costs CPU, several milliseconds on the bench's.)
IDLE_WAIT_S = 30.0


def notice_of(payloads: Iterable[dict[str, Any]]) -> str:
    """The NOTIFY payload for a write of these `run.updated` payloads: `QUEUED` when one of them says a
    run is now queued, else ""."""
    return QUEUED if any(payload.get("status") == QUEUED for payload in payloads) else ""


_log = logging.getLogger("phoneflow.runs.events")


def notify_on_commit(session: Session) -> None:
    """Queue a wake-up for every hub; PostgreSQL sends it when this transaction commits. For writes that
    make no run `queued` (those that do go through record_changes or insert_run_events)."""
    # One per transaction: PostgreSQL folds equal notifications of a transaction into one anyway.
    if session.get_bind().dialect.name == "postgresql" and once_per_transaction(session, "notify"):
        session.execute(_NOTIFY)


class Listener:
    """A thread that calls `wake(payload)` for every notification on `CHANNEL` (PostgreSQL only), and
    `wake(None)` whenever it starts listening (what was committed meanwhile is unknown)."""

    def __init__(self, engine: Engine, wake: Callable[[str | None], None]) -> None:
        url = engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._wake = wake
        self._stop = threading.Event()
        self._stop_channel = f"{CHANNEL}_stop_{os.getpid()}_{id(self):x}"
        self._thread = threading.Thread(target=self._run, name="run-events-listen", daemon=True)
        # True while LISTEN is in force: every commit's notification then arrives here.
        self.listening = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.listening:  # wake the thread now rather than at its next look
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(self._conninfo, autocommit=True, connect_timeout=2) as conn,
            ):
                conn.execute(f"NOTIFY {self._stop_channel}")
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    conn.execute(f"LISTEN {self._stop_channel}")
                    self.listening = True
                    self._wake(None)  # anything committed while we were not listening
                    while not self._stop.is_set():
                        for notification in conn.notifies(timeout=IDLE_WAIT_S, stop_after=1):
                            if notification.channel == CHANNEL:
                                self._wake(notification.payload)
            except psycopg.Error:
                self.listening = False
                # The tail still polls; listen again after a pause.
                _log.warning("listening for run events failed; retrying", exc_info=True)
                self._stop.wait(2.0)
        self.listening = False
