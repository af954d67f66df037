"""What one small runs.report costs the database: the statements of a phone's report at every step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, text

from server.runs import report as report_module
from server.runs.models import Run, RunDailyStat, RunEvent, RunInputValue, RunLogRow, TraceEventRow
from server.runs.rollup import day_key
from server.runs.service import summary_json
from server.webhooks.models import WebhookDelivery
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report


@contextmanager
def _statements(client: TestClient) -> Iterator[list[str]]:
    """The SQL the app's engine runs meanwhile."""
    engine = client.app.state.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_version_is_looked_up_once_per_account_and_process(client: TestClient, db: Db) -> None:
    acc, other = create_account(db), create_account(db, email="other@example.com")
    dev, stranger = create_device(db, acc.id), create_device(db, other.id)
    wf = create_workflow(db, acc.id)

    def report(token: str) -> tuple[str, list[str]]:
        with _statements(client) as seen:
            response = client.post(
                "/api/v1/runs.report",
                json={"runs": [run_report(new_run_id(), wf, steps=2)]},
                headers=auth(token),
            )
        assert response.status_code == 200, response.text
        return response.json()["runs"][0]["result"], [s for s in seen if "workflow_versions" in s]

    result, lookups = report(dev.token)
    assert (result, len(lookups)) == ("stored", 1)
    assert report(dev.token) == ("stored", [])  # known in this process: no query
    result, lookups = report(stranger.token)  # another account's device naming it: asked, and refused
    assert (result, len(lookups)) == ("rejected", 1)


def test_webhooks_are_looked_up_only_for_accounts_that_have_endpoints(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)

    def end_a_run() -> list[str]:
        with _statements(client) as seen:
            response = client.post(
                "/api/v1/runs.report",
                json={"runs": [run_report(new_run_id(), wf, status="success", steps=1)]},
                headers=auth(dev.token),
            )
        assert response.json()["runs"][0]["result"] == "stored", response.text
        return [s for s in seen if " ".join(s.split()).startswith("SELECT webhook_endpoints.")]

    def deliveries() -> int:
        with db.session_factory() as session:
            return session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0

    assert end_a_run() == []  # none: known from the device's statement
    made = client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/in", "events": ["run.finished"]},
        headers=auth(acc.token),
    )
    assert made.status_code == 201, made.text
    assert len(end_a_run()) == 1
    assert deliveries() == 1
    disabled = client.patch(
        f"/api/v1/webhooks/{made.json()['id']}", json={"enabled": False}, headers=auth(acc.token)
    )
    assert disabled.status_code == 200, disabled.text
    assert end_a_run() == []
    assert deliveries() == 1


def _reads_whole_runs(statement: str) -> bool:
    """A statement reading runs' whole rows (`select(Run.__table__)`), as `record_changes` reads runs it
    is not given."""
    return " ".join(statement.split()).startswith("SELECT runs.id, runs.account_id, runs.workflow_id")


def test_run_updated_of_a_new_run_is_its_row_as_read_back(client: TestClient, db: Db) -> None:
    # runs.report writes run.updated from the rows its INSERT and UPDATEs returned instead of reading
    # them again.
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    rid, twice = new_run_id(), new_run_id()
    runs = [
        run_report(rid, wf, status="success", steps=2, inputs={"order": "A-1"}),
        run_report(twice, wf, steps=1),
        run_report(twice, wf, steps=3),  # the same run again in the batch: moved after its insert
    ]
    with _statements(client) as seen:
        response = client.post("/api/v1/runs.report", json={"runs": runs}, headers=auth(dev.token))
    assert [r["result"] for r in response.json()["runs"]] == ["stored", "stored", "stored"]
    assert not [s for s in seen if _reads_whole_runs(s)]  # `twice`'s row came back from its UPDATE
    with db.session_factory() as session:
        for run_id in (rid, twice):
            payloads = session.scalars(
                select(RunEvent.payload).where(RunEvent.run_id == run_id).order_by(RunEvent.id)
            ).all()
            row = session.execute(select(Run.__table__).where(Run.__table__.c.id == run_id)).one()
            assert [p if isinstance(p, dict) else json.loads(p) for p in payloads] == [summary_json(row)]


def _stored(db: Db, run_id: str) -> dict[str, Any]:
    """What the database holds of a run: its row (ids and times aside), trace, run.updated payloads and
    indexed input values."""
    with db.session_factory() as session:
        row = session.execute(select(Run.__table__).where(Run.__table__.c.id == run_id)).one()
        payloads = session.scalars(
            select(RunEvent.payload).where(RunEvent.run_id == run_id).order_by(RunEvent.id)
        ).all()
        trace = session.scalars(
            select(TraceEventRow.event).where(TraceEventRow.run_id == run_id).order_by(TraceEventRow.seq)
        ).all()
        values = session.scalars(select(RunInputValue.value).where(RunInputValue.run_id == run_id)).all()
    assert [p if isinstance(p, dict) else json.loads(p) for p in payloads] == [summary_json(row)]
    kept = {k: v for k, v in row._mapping.items() if k not in ("id", "created_at", "updated_at")}
    return {
        "row": kept,
        "trace": [e if isinstance(e, dict) else json.loads(e) for e in trace],
        "values": values,
    }


def _rollup(db: Db) -> list[tuple[str, str, str, int, int, int]]:
    with db.session_factory() as session:
        rows = session.execute(
            select(
                RunDailyStat.dimension,
                RunDailyStat.key,
                RunDailyStat.status,
                func.sum(RunDailyStat.runs),
                func.sum(RunDailyStat.timed),
                func.sum(RunDailyStat.duration_sum),
            ).group_by(RunDailyStat.dimension, RunDailyStat.key, RunDailyStat.status)
        ).all()
    return sorted((d, k, s, int(r), int(t), int(u)) for d, k, s, r, t, u in rows)


@pytest.mark.parametrize("status", ["running", "failed"])
def test_a_new_run_reported_alone_is_stored_as_in_a_batch(client: TestClient, db: Db, status: str) -> None:
    # A run reported alone takes one statement on PostgreSQL (server/runs/fresh_run.py); it must store
    # exactly what the general path of a batch stores, count once in the rollup, and a retry of the
    # report must change nothing.
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    alone, batched, other = new_run_id(), new_run_id(), new_run_id()

    def report(runs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
        with _statements(client) as seen:
            response = client.post("/api/v1/runs.report", json={"runs": runs}, headers=auth(dev.token))
        assert response.status_code == 200, response.text
        return [r["result"] for r in response.json()["runs"]], seen

    def run(run_id: str) -> dict[str, Any]:
        return run_report(run_id, wf, status=status, steps=3, inputs={"order": "A-7", "note": "x\\y\ttab"})

    results, seen = report([run(alone)])
    assert results == ["stored"]
    if db.engine.dialect.name == "postgresql":
        writes = [s for s in seen if s.lstrip().upper().startswith(("INSERT", "WITH", "COPY"))]
        # The run, its trace, its run.updated event and its rollup count are one statement, sent to the
        # driver as is: through SQLAlchemy go only the input values.
        assert [w.split("(")[0].strip() for w in writes] == ["INSERT INTO run_input_values"], writes
    assert report([run(batched), run_report(other, wf)])[0] == ["stored", "stored"]
    assert _stored(db, alone) == _stored(db, batched)
    counted = _rollup(db)
    ended = 2 if status == "failed" else 0
    assert sum(r for d, _, s, r, _, _ in counted if d == "workflow" and s == status) == ended

    assert report([run(alone)])[0] == ["unchanged"]  # the same report again: nothing written twice
    assert _stored(db, alone) == _stored(db, batched)
    assert _rollup(db) == counted


def test_a_report_of_a_stored_run_reads_it_once_and_writes_run_updated_from_its_update(
    client: TestClient, db: Db
) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    rid = new_run_id()
    first = client.post(
        "/api/v1/runs.report", json={"runs": [run_report(rid, wf, steps=1)]}, headers=auth(dev.token)
    )
    assert first.json()["runs"][0]["result"] == "stored", first.text
    runs = [run_report(rid, wf, steps=2), run_report(rid, wf, status="success", steps=3)]
    with _statements(client) as seen:
        response = client.post("/api/v1/runs.report", json={"runs": runs}, headers=auth(dev.token))
    assert [r["result"] for r in response.json()["runs"]] == ["stored", "stored"]
    flat = [" ".join(s.split()) for s in seen]
    assert not [s for s in flat if _reads_whole_runs(s)]
    # The run and its stored events at the report's seqs come in one statement, per report.
    assert not [s for s in flat if s.startswith("SELECT trace_events.")]
    if db.engine.dialect.name == "sqlite":  # (PostgreSQL's goes to the driver as is: not seen here)
        assert len([s for s in flat if s.startswith("SELECT runs.status, runs.trace_len")]) == 2
    with db.session_factory() as session:
        payloads = session.scalars(
            select(RunEvent.payload).where(RunEvent.run_id == rid).order_by(RunEvent.id)
        ).all()
        row = session.execute(select(Run.__table__).where(Run.__table__.c.id == rid)).one()
        seqs = session.scalars(select(TraceEventRow.seq).where(TraceEventRow.run_id == rid)).all()
    last = payloads[-1] if isinstance(payloads[-1], dict) else json.loads(payloads[-1])
    assert last == summary_json(row)
    assert (last["status"], last["traceLen"]) == ("success", 3)
    assert sorted(seqs) == [1, 2, 3]


def test_a_run_the_server_made_is_judged_without_an_insert_and_stored_again_once_deleted(
    client: TestClient, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A claimed run's reports go straight to the compare-and-set path; one whose row is gone (retention
    # deleted it while its phone was offline) is stored again, as any unknown run is.
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    queued = client.post(
        f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id}, headers=auth(acc.token)
    )
    assert queued.status_code == 201, queued.text
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(dev.token))
    assert claimed.status_code == 200, claimed.text
    run_id = claimed.json()["run"]["id"]
    inserts: list[str] = []
    real = report_module.store_fresh_run

    def spy(session: Any, report: Any, values: Any, now: Any) -> Any:
        inserts.append(report.id)
        return real(session, report, values, now)

    monkeypatch.setattr(report_module, "store_fresh_run", spy)

    def send(status: str, steps: int) -> str:
        body = run_report(run_id, wf, status=status, steps=steps, trigger="manual")
        response = client.post("/api/v1/runs.report", json={"runs": [body]}, headers=auth(dev.token))
        assert response.status_code == 200, response.text
        result: str = response.json()["runs"][0]["result"]
        return result

    assert send("running", 2) == "stored"
    assert inserts == []
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM runs WHERE id = :r"), {"r": run_id})
    assert send("success", 3) == "stored"
    assert inserts == ([run_id] if db.engine.dialect.name == "postgresql" else [])
    with db.session_factory() as session:
        status = session.scalar(select(Run.status).where(Run.id == run_id))
        seqs = session.scalars(select(TraceEventRow.seq).where(TraceEventRow.run_id == run_id)).all()
    assert (status, sorted(seqs)) == ("success", [1, 2, 3])


def test_a_claimed_runs_reports_write_run_updated_with_the_run(client: TestClient, db: Db) -> None:
    # A run the server made, reported alone: on PostgreSQL its write makes its run.updated event too
    # (server/runs/stored_run.py), which must be what `summary_json` makes of the row, once per report.
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    inputs = {"order": "A-7", "note": "x\\y\ttab é"}
    queued = client.post(
        f"/api/v1/workflows/{wf.id}/runs",
        json={"deviceId": dev.id, "inputs": inputs},
        headers=auth(acc.token),
    )
    assert queued.status_code == 201, queued.text
    run_id = client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).json()["run"]["id"]

    def send(status: str, steps: int) -> list[str]:
        body = run_report(run_id, wf, status=status, steps=steps, trigger="api", inputs=inputs)
        del body["startedAt"]  # the claim's stays
        with _statements(client) as seen:
            response = client.post("/api/v1/runs.report", json={"runs": [body]}, headers=auth(dev.token))
        assert response.json()["runs"][0]["result"] == "stored", response.text
        return [" ".join(s.split()) for s in seen]

    def payloads() -> list[dict[str, Any]]:
        with db.session_factory() as session:
            found = session.scalars(
                select(RunEvent.payload).where(RunEvent.run_id == run_id).order_by(RunEvent.id)
            ).all()
            row = session.execute(select(Run.__table__).where(Run.__table__.c.id == run_id)).one()
        events = [p if isinstance(p, dict) else json.loads(p) for p in found]
        assert events[-1] == summary_json(row)
        return events

    seen = send("running", 2)
    assert [p["traceLen"] for p in payloads()] == [0, 0, 2]  # queued, claimed, this report
    if db.engine.dialect.name == "postgresql":
        assert not [s for s in seen if s.startswith("INSERT INTO run_events")]  # written with the run
    send("success", 3)
    ended = payloads()
    assert [(p["status"], p["traceLen"]) for p in ended[2:]] == [("running", 2), ("success", 3)]
    assert ended[-1]["startedAt"] == ended[1]["startedAt"]  # the claim's


def _log_and_rollup(db: Db, run_id: str) -> tuple[Any, list[tuple[str, str, str, int, int, int]]]:
    """A run's stored engine log, and what the rollup counts of it (its workflow's rows aside from its
    device's: every run here is of one workflow and device, so the rows are the sums of the runs')."""
    with db.session_factory() as session:
        entries = session.scalar(select(RunLogRow.entries).where(RunLogRow.run_id == run_id))
    return entries, _rollup(db)


@pytest.mark.parametrize("status", ["success", "failed", "running"])
def test_a_claimed_runs_report_writes_its_log_and_rollup_count_with_the_run(
    client: TestClient, db: Db, status: str
) -> None:
    # On PostgreSQL a claimed run's report (runs.report of one run, or carried on the next claim) writes
    # the engine's log and, when it ends the run, its rollup count in the run's own statement
    # (stored_run.store_recorded_pg): what it writes must be what the general path writes, once.
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    log = [
        {"seq": 1, "atMs": 0, "step": None, "nodeId": None, "kind": "start", "text": "go é", "values": {}},
        {"seq": 2, "atMs": 5, "step": 1, "nodeId": "n1", "kind": "step", "text": "ok", "values": {"a": [1]}},
    ]

    def claimed() -> str:
        queued = client.post(
            f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id}, headers=auth(acc.token)
        )
        assert queued.status_code == 201, queued.text
        run_id: str = client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).json()["run"]["id"]
        return run_id

    def body(run_id: str) -> dict[str, Any]:
        return run_report(run_id, wf, status=status, steps=2, trigger="api", log=log)

    alone, batched = claimed(), claimed()
    with _statements(client) as seen:
        carried = client.post(
            "/api/v1/devices/me/claim", json={"lease": True, "report": body(alone)}, headers=auth(dev.token)
        )
    assert carried.status_code == 200, carried.text
    assert carried.json()["report"]["result"] == "stored"
    flat = [" ".join(s.split()) for s in seen]
    if db.engine.dialect.name == "postgresql":
        assert not [s for s in flat if s.startswith("INSERT INTO run_logs")], flat  # with the run
    log_alone, counted_alone = _log_and_rollup(db, alone)
    assert log_alone == log
    ends = status != "running"
    assert sum(r for d, _, s, r, _, _ in counted_alone if d == "workflow" and s == status) == int(ends)

    # The general path (a batch of two reports of the run: its progress, then this) writes the same.
    progress = run_report(batched, wf, steps=1, trigger="api")
    answer = client.post(
        "/api/v1/runs.report", json={"runs": [progress, body(batched)]}, headers=auth(dev.token)
    )
    assert [r["result"] for r in answer.json()["runs"]] == ["stored", "stored"], answer.text
    log_batched, counted_both = _log_and_rollup(db, batched)
    assert log_batched == log
    doubled = [(d, k, s, 2 * r, 2 * t, 2 * u) for d, k, s, r, t, u in counted_alone]
    assert counted_both == doubled
    with db.session_factory() as session:
        created = session.scalars(select(Run.created_at).where(Run.id.in_([alone, batched]))).all()
        days = set(session.scalars(select(RunDailyStat.day)).all())
    assert days == ({day_key(moment) for moment in created} if ends else set())

    # The same report again: unchanged, nothing counted or logged twice.
    again = client.post("/api/v1/runs.report", json={"runs": [body(alone)]}, headers=auth(dev.token))
    assert again.json()["runs"][0]["result"] == "unchanged", again.text
    assert _log_and_rollup(db, alone) == (log, counted_both)
