"""A phone's own new run reported alone: one statement in autocommit on PostgreSQL (lone_report.py).

Whatever that lane does must be what the transaction of the general path does: the same rows, the same
answers (a revoked token's 401, a stored run's verdict), nothing half-written, run.updated and the
NOTIFY only once the run is committed. On SQLite every report keeps the general path.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from server.db import utcnow
from server.devices.models import Device
from server.runs import lone_report, report_lane
from server.runs.events import get_hub
from server.runs.models import Run, RunDailyStat, RunEvent, RunInputValue, RunStepFailure, TraceEventRow
from server.runs.service import summary_json
from tests.server.factories import (
    Db,
    DeviceFixture,
    WorkflowFixture,
    auth,
    create_account,
    create_device,
    create_workflow,
)
from tests.server.runs_support import new_run_id, run_report


@pytest.fixture
def transactions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry per runs.report the lane left to the general path's transaction from now on."""
    taken: list[str] = []
    real = report_lane.in_transaction

    def spy(factory: Any, work: Any) -> Any:
        taken.append("transaction")
        return real(factory, work)

    monkeypatch.setattr(report_lane, "in_transaction", spy)
    return taken


def _send(client: TestClient, device: DeviceFixture, *runs: dict[str, Any]) -> Any:
    return client.post("/api/v1/runs.report", json={"runs": list(runs)}, headers=auth(device.token))


def _results(client: TestClient, device: DeviceFixture, *runs: dict[str, Any]) -> list[str]:
    response = _send(client, device, *runs)
    assert response.status_code == 200, response.text
    return [r["result"] for r in response.json()["runs"]]


def _phone(db: Db) -> tuple[DeviceFixture, WorkflowFixture]:
    acc = create_account(db)
    return create_device(db, acc.id), create_workflow(db, acc.id)


def _remembered(client: TestClient, device: DeviceFixture, wf: WorkflowFixture) -> None:
    """A first report of the device in this process: the general path, which finds the device and the
    version (the lane's next reports go alone)."""
    assert _results(client, device, run_report(new_run_id(), wf, steps=1)) == ["stored"]


def _stored(db: Db, run_id: str) -> dict[str, Any] | None:
    """What the database holds of a run (ids and times aside), None when nothing."""
    with db.session_factory() as session:
        row = session.execute(select(Run.__table__).where(Run.__table__.c.id == run_id)).first()
        payloads = session.scalars(select(RunEvent.payload).where(RunEvent.run_id == run_id)).all()
        trace = session.scalars(
            select(TraceEventRow.event).where(TraceEventRow.run_id == run_id).order_by(TraceEventRow.seq)
        ).all()
        values = session.scalars(
            select(RunInputValue.value).where(RunInputValue.run_id == run_id).order_by(RunInputValue.value)
        ).all()
        log = session.execute(
            text("SELECT CAST(entries AS TEXT) FROM run_logs WHERE run_id = :r"), {"r": run_id}
        ).scalar()  # as stored, byte for byte
        failures = [
            (f.seq, f.account_id, f.workflow_id, f.node_id, f.kind, f.message, f.at)
            for f in session.scalars(
                select(RunStepFailure).where(RunStepFailure.run_id == run_id).order_by(RunStepFailure.seq)
            )
        ]
    if row is None:
        assert (payloads, trace, values, log, failures) == ([], [], [], None, [])
        return None
    assert [p if isinstance(p, dict) else json.loads(p) for p in payloads] == [summary_json(row)]
    kept = {k: v for k, v in row._mapping.items() if k not in ("id", "created_at", "updated_at")}
    events = [e if isinstance(e, dict) else json.loads(e) for e in trace]
    return {"row": kept, "trace": events, "values": values, "log": log, "failures": failures}


def _runs_counted(db: Db) -> int:
    with db.session_factory() as session:
        total = session.scalar(
            select(func.sum(RunDailyStat.runs)).where(RunDailyStat.dimension == "workflow")
        )
    return int(total or 0)


_INPUTS = {"order": "A-7", "note": "x\\y\ttab é", "count": 3, "again": "a-7", "nested": {"no": 1}}
_LOG = [
    {"seq": 1, "atMs": 0, "kind": "start", "text": "started"},
    {"seq": 2, "atMs": 40, "step": 1, "nodeId": "n1", "kind": "var-set", "text": "x", "values": {"x": "é"}},
]


@pytest.mark.parametrize(
    ("status", "extra"),
    [
        ("running", {}),
        ("success", {}),
        ("cancelled", {}),
        ("running", {"inputs": _INPUTS}),
        ("success", {"inputs": _INPUTS, "log": _LOG}),
        ("failed", {"log": _LOG}),  # its workflow retries no run
        ("timeout", {}),
        ("running", {"failed": 2}),  # failed steps are kept once the run ends
        ("success", {"failed": 2}),
    ],
)
def test_a_lone_new_run_is_stored_without_a_transaction_as_the_general_path_stores_it(
    client: TestClient, db: Db, transactions: list[str], status: str, extra: dict[str, Any]
) -> None:
    dev, wf = _phone(db)
    _remembered(client, dev, wf)
    alone, batched = new_run_id(), new_run_id()
    counted = _runs_counted(db)

    def run(run_id: str) -> dict[str, Any]:
        body = {**run_report(run_id, wf, status=status, steps=3), **extra}
        failed = body.pop("failed", None)
        if failed is not None:
            body["trace"][failed - 1].update(outcome="failed", message="no element with text 'Saved'")
        if status in ("failed", "timeout"):
            body["trace"][-1].update(outcome="failed", message="x" * 400)  # kept cut at 300 characters
        return body

    transactions.clear()
    assert _results(client, dev, run(alone)) == ["stored"]
    assert transactions == ([] if db.kind == "postgresql" else ["transaction"])
    # In a batch (the general path) the same run is stored the same way.
    assert _results(client, dev, run(batched), run_report(new_run_id(), wf))
    stored = _stored(db, alone)
    assert stored == _stored(db, batched)
    assert stored is not None
    # "A-7" and "a-7" are one value; the nested one is not kept.
    assert len(stored["values"]) == (3 if "inputs" in extra else 0)
    assert (stored["log"] is not None) == ("log" in extra)
    ended = status != "running"
    assert len(stored["failures"]) == (ended * ("failed" in extra) + (status in ("failed", "timeout")))
    assert _runs_counted(db) == counted + (2 if status != "running" else 0)
    # Again: a report of a stored run, judged in the transaction; nothing written twice.
    transactions.clear()
    assert _results(client, dev, run(alone)) == ["unchanged"]
    assert transactions == ["transaction"]
    assert _runs_counted(db) == counted + (2 if status != "running" else 0)


def test_the_lane_leaves_every_pooled_connection_out_of_autocommit(client: TestClient, db: Db) -> None:
    dev, wf = _phone(db)
    _remembered(client, dev, wf)
    assert _results(client, dev, run_report(new_run_id(), wf, status="success", steps=2)) == ["stored"]
    engine = client.app.state.engine  # type: ignore[attr-defined]
    for _ in range(3):  # a connection in autocommit would not roll back a failed request
        with engine.connect() as conn:
            assert conn.connection.driver_connection.autocommit is False if db.kind == "postgresql" else True
            conn.rollback()


def test_a_run_the_server_made_takes_the_transaction(
    client: TestClient, db: Db, transactions: list[str]
) -> None:
    dev, wf = _phone(db)
    _remembered(client, dev, wf)
    transactions.clear()
    body = run_report(new_run_id(), wf, status="success", steps=2, trigger="manual")
    assert _results(client, dev, body) == ["stored"]
    assert transactions == ["transaction"]  # judged first (report._first_write_of_one)


def test_a_run_whose_workflow_retries_it_takes_the_transaction_that_queues_the_retry(
    client: TestClient, db: Db, transactions: list[str]
) -> None:
    dev, wf = _phone(db)
    _remembered(client, dev, wf)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE workflows SET auto_retry_max = 1 WHERE id = :w"), {"w": wf.id})
    for status in ("failed", "timeout"):
        run_id = new_run_id()
        transactions.clear()
        assert _results(client, dev, run_report(run_id, wf, status=status, steps=2)) == ["stored"]
        assert transactions == ["transaction"]
        with db.session_factory() as session:
            retries = session.scalars(select(Run.status).where(Run.retry_of == run_id)).all()
        assert retries == ["queued"]
    # Succeeded: nothing to retry, no transaction needed.
    transactions.clear()
    assert _results(client, dev, run_report(new_run_id(), wf, status="success", steps=2)) == ["stored"]
    assert transactions == ([] if db.kind == "postgresql" else ["transaction"])


def _revoke(db: Db, device: DeviceFixture) -> None:
    with db.session_factory.begin() as session:
        found = session.get(Device, device.id)
        assert found is not None
        found.revoked_at = utcnow()


def test_a_revoked_device_is_refused_as_before(client: TestClient, db: Db) -> None:
    dev, wf = _phone(db)
    _remembered(client, dev, wf)  # the lane now knows the token
    _revoke(db, dev)
    run_id = new_run_id()
    response = _send(client, dev, run_report(run_id, wf, status="success", steps=2))
    assert response.status_code == 401, response.text
    assert _stored(db, run_id) is None
    # The answer is the general path's own (a batch of two goes that way).
    batch = _send(
        client, dev, run_report(run_id, wf, status="success", steps=2), run_report(new_run_id(), wf)
    )
    assert (batch.status_code, batch.content) == (response.status_code, response.content)
    assert b"this device was revoked" in response.content


def test_a_token_moved_to_another_device_is_not_taken_for_the_old_one(client: TestClient, db: Db) -> None:
    # The lane's memory of a token is a guess the statement checks: a device deleted and its token's hash
    # given to another device (as if) stores the run for the device the token now finds.
    dev, wf = _phone(db)
    _remembered(client, dev, wf)
    other = create_device(db, dev.account_id)
    with db.engine.begin() as conn:
        hashed = conn.execute(text("SELECT token_hash FROM devices WHERE id = :d"), {"d": dev.id}).scalar()
        conn.execute(text("UPDATE devices SET token_hash = :h WHERE id = :d"), {"h": "gone", "d": dev.id})
        conn.execute(text("UPDATE devices SET token_hash = :h WHERE id = :d"), {"h": hashed, "d": other.id})
    run_id = new_run_id()
    assert _results(client, dev, run_report(run_id, wf, status="success", steps=1)) == ["stored"]
    with db.session_factory() as session:
        assert session.scalar(select(Run.device_id).where(Run.id == run_id)) == other.id


def test_another_devices_run_is_rejected_as_before(client: TestClient, db: Db) -> None:
    dev, wf = _phone(db)
    other = create_device(db, dev.account_id)
    _remembered(client, dev, wf)
    _remembered(client, other, wf)
    run_id = new_run_id()
    assert _results(client, other, run_report(run_id, wf, steps=1)) == ["stored"]
    response = _send(client, dev, run_report(run_id, wf, status="success", steps=2))
    assert response.json()["runs"][0]["result"] == "rejected"
    assert "belongs to another device" in response.json()["runs"][0]["reason"]
    stored = _stored(db, run_id)
    assert stored is not None
    assert (stored["row"]["device_id"], stored["row"]["trace_len"]) == (other.id, 1)


@pytest.fixture
def pg_only(db: Db) -> Db:
    if db.kind != "postgresql":
        pytest.skip("the lane is PostgreSQL's (SQLite keeps the general path)")
    return db


def _driver_url(db: Db) -> str:
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def test_a_concurrent_first_report_waits_and_is_judged_as_a_report_of_a_stored_run(
    client: TestClient, pg_only: Db, transactions: list[str]
) -> None:
    db = pg_only
    dev, wf = _phone(db)
    _remembered(client, dev, wf)
    run_id = new_run_id()
    body = run_report(run_id, wf, status="success", steps=2)
    results: list[Any] = []
    # Another process's first report of the same run, not committed yet: its row holds the id.
    with psycopg.connect(_driver_url(db)) as other:
        other.execute(
            "INSERT INTO runs (id, account_id, workflow_id, workflow_version_id, device_id, status, "
            "status_rank, trigger, inputs, trace_len, attempt, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, 'running', 1, 'device', '{}', 0, 1, now(), now())",
            (run_id, dev.account_id, wf.id, wf.version_id, dev.id),
        )
        transactions.clear()
        sender = threading.Thread(target=lambda: results.append(_send(client, dev, body)))
        sender.start()
        time.sleep(0.5)
        assert results == []  # waits on the uncommitted row
        other.commit()
        sender.join(30)
    assert results[0].status_code == 200, results[0].text
    # The first report won; this one moved the run on (a final report after a running one), in the
    # transaction, as any report of a stored run.
    assert results[0].json()["runs"][0]["result"] == "stored"
    assert transactions == ["transaction"]
    stored = _stored(db, run_id)
    assert stored is not None
    assert (stored["row"]["status"], stored["row"]["trace_len"]) == ("success", 2)
    assert _runs_counted(db) == 1


def test_a_statement_that_fails_leaves_nothing_written(client: TestClient, pg_only: Db) -> None:
    db = pg_only
    dev, wf = _phone(db)
    _remembered(client, dev, wf)
    counted = _runs_counted(db)
    with db.engine.begin() as conn:  # the last of the statement's writes fails
        conn.execute(
            text(
                "CREATE FUNCTION refuse_stats() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused'; END $$; "
                "CREATE TRIGGER refuse_stats BEFORE INSERT ON run_daily_stats "
                "FOR EACH ROW EXECUTE FUNCTION refuse_stats()"
            )
        )
    run_id = new_run_id()
    try:
        response = _send(client, dev, run_report(run_id, wf, status="success", steps=3))
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse_stats ON run_daily_stats; DROP FUNCTION refuse_stats()"))
    assert response.status_code == 500
    assert _stored(db, run_id) is None
    assert _runs_counted(db) == counted
    # The connection went back to the pool usable: the report again is stored whole.
    assert _results(client, dev, run_report(run_id, wf, status="success", steps=3)) == ["stored"]
    assert _runs_counted(db) == counted + 1


def test_run_updated_and_the_notify_come_once_the_run_is_committed(
    client: TestClient, pg_only: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = pg_only
    dev, wf = _phone(db)
    _remembered(client, dev, wf)
    run_id = new_run_id()
    seen_at_notify: list[bool] = []
    hub = get_hub(client.app)  # type: ignore[arg-type]
    real_notify = hub.notify

    def notify() -> None:
        # What another connection sees when this process's subscribers are woken.
        with psycopg.connect(_driver_url(db)) as other:
            found = other.execute("SELECT count(*) FROM run_events WHERE run_id = %s", (run_id,)).fetchone()
        seen_at_notify.append(found is not None and found[0] == 1)
        real_notify()

    monkeypatch.setattr(hub, "notify", notify)
    assert _results(client, dev, run_report(run_id, wf, status="success", steps=2)) == ["stored"]
    assert seen_at_notify == [True]
    with psycopg.connect(_driver_url(db)) as other:
        assert other.execute("SELECT count(*) FROM runs WHERE id = %s", (run_id,)).fetchone() == (1,)


def test_every_runs_ended_listener_is_known_to_the_lane() -> None:
    # A new listener of lifecycle.runs_ended makes the lane leave ended runs to the transaction, where
    # listeners run: say in lone_report.py what it does for a run the lane stores, then add it there.
    assert lone_report.listeners_known()


def _pooled_connections(client: TestClient) -> list[Any]:
    """The driver connections the app's pool holds now (none checked out between requests)."""
    pool = client.app.state.engine.pool  # type: ignore[attr-defined]
    return [entry.driver_connection for entry in list(pool._pool.queue) if entry.dbapi_connection is not None]


@pytest.mark.parametrize("committed", [True, False])
def test_a_connection_lost_during_the_statement_leaves_the_report_to_the_transaction(
    client: TestClient,
    pg_only: Db,
    transactions: list[str],
    monkeypatch: pytest.MonkeyPatch,
    committed: bool,
) -> None:
    # Whether a statement whose connection broke committed is unknown (as for a COMMIT whose answer is
    # lost): the general path looks, and answers; the broken connection does not go back to the pool.
    db = pg_only
    dev, wf = _phone(db)
    _remembered(client, dev, wf)
    real = lone_report.store_alone

    def breaks(driver: psycopg.Connection[Any], *args: Any) -> Any:
        if committed:
            real(driver, *args)
        driver.close()
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(lone_report, "store_alone", breaks)
    run_id = new_run_id()
    transactions.clear()
    results = _results(client, dev, run_report(run_id, wf, status="success", steps=2))
    assert results == (["unchanged"] if committed else ["stored"])
    assert transactions == ["transaction"]
    assert not [conn for conn in _pooled_connections(client) if conn.closed]
    assert _runs_counted(db) == 1
    stored = _stored(db, run_id)
    assert stored is not None
    assert stored["row"]["status"] == "success"
    monkeypatch.setattr(lone_report, "store_alone", real)
    transactions.clear()
    assert _results(client, dev, run_report(new_run_id(), wf, status="success", steps=2)) == ["stored"]
    assert transactions == []
