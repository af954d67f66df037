from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import OperationalError

from server import db as db_module
from server import scheduler as scheduler_module
from server.accounts.models import Account
from server.app import create_app
from server.db import after_commit, make_engine, normalise_url
from server.settings import Settings
from tests.server.conftest import PG_URL, postgres_unreachable_reason
from tests.server.factories import Db, create_account


def test_after_commit_runs_after_commit_and_never_after_rollback(db: Db) -> None:
    seen: list[str] = []
    with db.session_factory() as session:
        session.add(Account(email="a@example.com"))
        after_commit(session, lambda: seen.append("committed"))
        assert seen == []
        session.commit()
        assert seen == ["committed"]
        session.add(Account(email="b@example.com"))
        after_commit(session, lambda: seen.append("rolled back"))
        session.rollback()
        session.commit()
    assert seen == ["committed"]
    with db.session_factory() as session:
        assert session.scalars(select(Account.email)).all() == ["a@example.com"]


def test_after_commit_sees_committed_data_from_another_connection(db: Db) -> None:
    found: list[int] = []

    def count_from_elsewhere() -> None:
        with db.session_factory() as other:
            found.append(len(other.scalars(select(Account)).all()))

    with db.session_factory() as session:
        session.add(Account(email="c@example.com"))
        after_commit(session, count_from_elsewhere)
        session.commit()
    assert found == [1]


def test_timestamps_come_back_timezone_aware(db: Db) -> None:
    acc = create_account(db)
    with db.session_factory() as session:
        account = session.get(Account, acc.id)
        assert account is not None
        assert account.created_at.tzinfo is not None
        assert account.created_at.utcoffset() is not None


def test_urls_are_normalised_to_psycopg3() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_plain_database_url_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PHONEFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'plain.db'}")
    assert Settings().database_url.endswith("plain.db")
    monkeypatch.setenv("PHONEFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'prefixed.db'}")
    assert Settings().database_url.endswith("prefixed.db")


def test_the_app_migrates_an_empty_database_and_starts_its_jobs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    app = create_app(Settings(database_url=url, start_scheduler=True))
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        tables = set(inspect(app.state.engine).get_table_names())
        assert {"accounts", "devices", "workflows", "workflow_versions", "alembic_version"} <= tables
        assert app.state.scheduler.running
        assert app.state.scheduler.get_jobs(), "the retention job was not registered"


def test_after_commit_waits_for_the_outer_commit_not_a_savepoint(db: Db) -> None:
    seen: list[str] = []
    with db.session_factory() as session:
        session.add(Account(email="outer@example.com"))
        after_commit(session, lambda: seen.append("committed"))
        with session.begin_nested():
            session.add(Account(email="inner@example.com"))
        assert seen == []
        session.commit()
    assert seen == ["committed"]


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _terminate(pid: int) -> None:
    admin = make_engine(PG_URL, pool_pre_ping=False)
    try:
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def test_a_pooled_connection_is_pinged_only_after_it_sat_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    if postgres_unreachable_reason() is not None:
        pytest.skip(str(postgres_unreachable_reason()))
    engine = make_engine(PG_URL, pool_size=1, max_overflow=0)
    try:
        # Used a moment ago: handed out as it is (no round trip); a dead one then fails its statement.
        monkeypatch.setattr(db_module, "PING_IDLE_AFTER_S", 60.0)
        _terminate(_backend_pid(engine))
        with pytest.raises(OperationalError), engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        # Idle for longer than the limit: pinged, found dead, replaced by a fresh connection.
        monkeypatch.setattr(db_module, "PING_IDLE_AFTER_S", 0.0)
        first = _backend_pid(engine)
        _terminate(first)
        assert _backend_pid(engine) != first
    finally:
        engine.dispose()


def test_one_process_of_those_sharing_a_postgresql_database_runs_the_jobs_and_another_takes_over(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.kind != "postgresql":
        pytest.skip("on SQLite every process runs the jobs")
    monkeypatch.setattr(scheduler_module, "TURN_RETRY_S", 0.1)
    settings = Settings(database_url=db.url, run_migrations=False, start_scheduler=True)
    first, second = create_app(settings), create_app(settings)

    def until(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 10
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.02)

    with TestClient(first):
        until(lambda: first.state.jobs_turn.holding, "the first process did not take the jobs' turn")
        assert first.state.scheduler.state == STATE_RUNNING
        with TestClient(second):
            time.sleep(0.5)  # several tries for the turn
            assert not second.state.jobs_turn.holding
            assert second.state.scheduler.state == STATE_PAUSED  # its jobs wait for their turn
            first.state.jobs_turn.stop()  # as when the first process goes: its session ends, the lock with it
            until(lambda: second.state.jobs_turn.holding, "the second process did not take over")
            assert second.state.scheduler.state == STATE_RUNNING
