"""The run events' PostgreSQL listener (server/runs/pg_notify.py): it hears every notification, sleeps
while none comes (it looked at its stop flag every second), and a stop ends it at once."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from server.runs import pg_notify
from server.runs.pg_notify import CHANNEL, Listener
from tests.server.factories import Db


def test_the_listener_sleeps_while_idle_hears_notifications_and_stops_at_once(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.kind != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    looks = 0
    real_notifies = psycopg.Connection.notifies

    def counted(self: psycopg.Connection[Any], **options: Any) -> Any:
        nonlocal looks
        looks += 1
        return real_notifies(self, **options)

    monkeypatch.setattr(psycopg.Connection, "notifies", counted)
    heard: list[str | None] = []
    got = threading.Event()

    def wake(payload: str | None) -> None:
        heard.append(payload)
        if payload == "hello":
            got.set()

    listener = Listener(db.engine, wake)
    listener.start()
    try:
        deadline = time.monotonic() + 10
        while not listener.listening:
            assert time.monotonic() < deadline, "the listener did not listen"
            time.sleep(0.02)
        looks_before, heard_before = looks, len(heard)
        time.sleep(2.5)  # idle (other tests' servers may notify meanwhile: each such ends a wait)
        assert looks - looks_before <= (len(heard) - heard_before) + 1  # not a wait a second
        with db.engine.connect() as conn:
            conn.execute(text(f"SELECT pg_notify('{CHANNEL}', 'hello')"))
            conn.commit()
        assert got.wait(10)
        assert heard[0] is None  # its start: what was committed before it listened is unknown
    finally:
        heard_at_stop = len(heard)
        started = time.monotonic()
        listener.stop()
        stopped_in = time.monotonic() - started
    assert not listener._thread.is_alive()
    assert stopped_in < pg_notify.IDLE_WAIT_S / 2  # woken, not waiting out its look
    assert len(heard) == heard_at_stop  # its own stop notice is not a run event
