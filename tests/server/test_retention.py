"""Retention: expired runs go (with traces, artifacts, events) in bounded batches; SQLite files shrink."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, update

from server.accounts.models import Account
from server.app import create_app
from server.db import utcnow
from server.runs.models import Artifact, Run, RunDailyStat, RunEvent, TraceEventRow
from server.runs.retention import compact_sqlite, purge_expired_runs, run_retention
from server.scheduler import build_scheduler
from server.settings import Settings
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report


def _count(db: Db, model: type, **where: str) -> int:
    with db.session_factory() as session:
        query = select(func.count()).select_from(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return int(session.scalar(query) or 0)


def _received_when_started(db: Db) -> None:
    """As if every run had reached the server when it started (retention keys on both times)."""
    with db.session_factory.begin() as session:
        session.execute(update(Run).values(updated_at=Run.created_at))


def test_purge_removes_expired_runs_per_account(client: TestClient, db: Db) -> None:
    now = utcnow()
    keep_long, keep_short = create_account(db), create_account(db)
    with db.session_factory.begin() as session:
        session.execute(update(Account).where(Account.id == keep_short.id).values(run_retention_days=5))
    ids: dict[str, list[str]] = {keep_long.id: [], keep_short.id: []}
    for acc in (keep_long, keep_short):
        dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
        reports = []
        for age_days in (40, 20, 3, 0):
            rid = new_run_id()
            ids[acc.id].append(rid)
            reports.append(
                run_report(rid, wf, status="success", steps=3, started_at=now - timedelta(days=age_days))
            )
        answer = client.post("/api/v1/runs.report", json={"runs": reports}, headers=auth(dev.token))
        assert [a["result"] for a in answer.json()["runs"]] == ["stored"] * 4
        oldest = ids[acc.id][0]
        upload = client.post(
            f"/api/v1/runs/{oldest}/artifacts",
            files={"file": ("shot.png", b"\x89PNG\r\n\x1a\nfake", "image/png")},
            data={"name": "shot.png"},
            headers=auth(dev.token),
        )
        assert upload.status_code == 201, upload.text
    _received_when_started(db)

    commits: list[int] = []
    listener = lambda _conn: commits.append(1)  # noqa: E731
    event.listen(db.engine, "commit", listener)
    try:
        report = purge_expired_runs(db.session_factory, now=now, batch_size=1)
    finally:
        event.remove(db.engine, "commit", listener)
    assert report.runs == 1 + 2  # 40 days for the 30-day account; 40 and 20 days for the 5-day one
    with db.session_factory() as session:  # the analytics' rollup forgets the days that are gone
        rollup_days = {
            (row.account_id, row.day)
            for row in session.execute(select(RunDailyStat.account_id, RunDailyStat.day))
        }
    assert rollup_days == {
        *((keep_long.id, (now - timedelta(days=age)).date().isoformat()) for age in (20, 3, 0)),
        *((keep_short.id, (now - timedelta(days=age)).date().isoformat()) for age in (3, 0)),
    }
    # one short transaction per batch of (here) one run, so reports are never held up for long
    assert len(commits) >= 3
    with db.session_factory() as session:
        left = set(session.scalars(select(Run.id)))
    assert left == {*ids[keep_long.id][1:], *ids[keep_short.id][2:]}
    assert _count(db, TraceEventRow) == 3 * len(left)
    assert _count(db, Artifact) == 0
    assert _count(db, RunEvent, account_id=keep_long.id) == 4  # events are days younger than any window
    listed = client.get("/api/v1/runs", headers=auth(keep_short.token)).json()["runs"]
    assert {r["id"] for r in listed} == set(ids[keep_short.id][2:])

    # a week on, the event log of both accounts is gone too (it only serves reconnecting dashboards)
    later = purge_expired_runs(db.session_factory, now=now + timedelta(days=8), batch_size=2)
    assert later.run_events == 8
    assert _count(db, RunEvent) == 0
    # the scheduled job: nothing is left to remove now, and it runs (and compacts) cleanly
    assert run_retention(db.session_factory).runs == 0


def test_sqlite_file_shrinks_after_purge(client: TestClient, db: Db) -> None:
    if db.kind != "sqlite":
        return  # PostgreSQL reclaims space with autovacuum
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    old = utcnow() - timedelta(days=60)
    for _ in range(6):
        batch = [run_report(new_run_id(), wf, status="success", steps=40, started_at=old) for _ in range(6)]
        answer = client.post("/api/v1/runs.report", json={"runs": batch}, headers=auth(dev.token))
        assert answer.status_code == 200, answer.text
    _received_when_started(db)
    path = Path(db.url.removeprefix("sqlite:///"))
    compact_sqlite(db.engine)  # converts the file to incremental auto-vacuum once
    full = os.path.getsize(path)
    assert purge_expired_runs(db.session_factory).runs == 36
    compact_sqlite(db.engine)
    assert os.path.getsize(path) < full * 0.6
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2


def test_retention_job_is_registered(settings: Settings, db: Db) -> None:
    scheduler = build_scheduler(settings, db.session_factory)
    assert scheduler.get_job("runs.retention") is not None


def _expired_runs(client: TestClient, db: Db, count: int) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    started = utcnow() - timedelta(days=60)
    reports = [
        run_report(new_run_id(), wf, status="success", steps=1, started_at=started) for _ in range(count)
    ]
    answer = client.post("/api/v1/runs.report", json={"runs": reports}, headers=auth(dev.token))
    assert [a["result"] for a in answer.json()["runs"]] == ["stored"] * count
    _received_when_started(db)


def test_a_purge_stops_between_batches_when_the_server_shuts_down(client: TestClient, db: Db) -> None:
    _expired_runs(client, db, 5)
    batches: list[int] = []
    listener = lambda _conn: batches.append(1)  # noqa: E731
    event.listen(db.engine, "commit", listener)
    try:
        report = purge_expired_runs(db.session_factory, batch_size=2, should_stop=lambda: len(batches) >= 1)
    finally:
        event.remove(db.engine, "commit", listener)
    assert report.runs == 2  # one batch, then it stopped
    assert _count(db, Run) == 3
    assert purge_expired_runs(db.session_factory, batch_size=2).runs == 3  # the next pass goes on


def test_shutdown_waits_for_a_running_job_before_closing_the_database(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"start_scheduler": True}))
    started, finished = threading.Event(), threading.Event()

    def job_holding_a_connection() -> None:
        with app.state.engine.connect() as conn:
            started.set()
            time.sleep(0.5)
            conn.execute(select(func.count()).select_from(Run))
        finished.set()

    with TestClient(app):
        app.state.scheduler.add_job(job_holding_a_connection)
        assert started.wait(10)
    # The lifespan ended only after the job did: its connection went back to the pool before the
    # engine was disposed, instead of being left open for the garbage collector.
    assert finished.is_set()
    assert app.state.engine.pool.checkedout() == 0
