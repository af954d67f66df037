"""GET /api/v1/runs: filters, newest first, cursor pagination, account scoping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from interpreter.trace import RunStatus
from server.runs.listing import RunFilters, RunSort, encode_cursor, list_runs
from server.runs.models import Run
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import T0, iso, new_run_id, run_report


def _list(client: TestClient, token: str, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/runs", params=params, headers=auth(token))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def test_filters_order_and_cursor(client: TestClient, db: Db) -> None:
    acc, other = create_account(db), create_account(db)
    dev_a, dev_b = create_device(db, acc.id), create_device(db, acc.id)
    wf_x, wf_y = create_workflow(db, acc.id), create_workflow(db, acc.id, name="y")
    other_dev, other_wf = create_device(db, other.id), create_workflow(db, other.id)
    # 9 runs, one per minute: workflow x/y alternate, the first 5 on device a, statuses vary
    statuses = [
        "success",
        "failed",
        "running",
        "success",
        "timeout",
        "success",
        "running",
        "failed",
        "success",
    ]
    runs = []
    for i, status in enumerate(statuses):
        wf, dev = (wf_x if i % 2 == 0 else wf_y), (dev_a if i < 5 else dev_b)
        rid = new_run_id()
        report = run_report(rid, wf, status=status, steps=2, started_at=T0 + timedelta(minutes=i))
        answer = client.post("/api/v1/runs.report", json={"runs": [report]}, headers=auth(dev.token)).json()
        assert answer["runs"][0]["result"] == "stored"
        runs.append({"id": rid, "status": status, "wf": wf.id, "dev": dev.id, "minute": i})
    client.post(
        "/api/v1/runs.report",
        json={"runs": [run_report(new_run_id(), other_wf, steps=1)]},
        headers=auth(other_dev.token),
    )
    newest_first = [r["id"] for r in reversed(runs)]

    page = _list(client, acc.token)
    assert [r["id"] for r in page["runs"]] == newest_first
    assert page["nextCursor"] is None
    assert "trace" not in page["runs"][0]

    assert [r["id"] for r in _list(client, acc.token, status="success")["runs"]] == [
        r["id"] for r in reversed(runs) if r["status"] == "success"
    ]
    assert [r["id"] for r in _list(client, acc.token, workflowId=wf_y.id)["runs"]] == [
        r["id"] for r in reversed(runs) if r["wf"] == wf_y.id
    ]
    assert [r["id"] for r in _list(client, acc.token, deviceId=dev_b.id, status="running")["runs"]] == [
        r["id"] for r in reversed(runs) if r["dev"] == dev_b.id and r["status"] == "running"
    ]
    window = _list(
        client, acc.token, **{"from": iso(T0 + timedelta(minutes=2)), "to": iso(T0 + timedelta(minutes=5))}
    )
    assert [r["id"] for r in window["runs"]] == [r["id"] for r in reversed(runs) if 2 <= r["minute"] < 5]

    # pages of 4 cover every run once, in order; filters hold across pages
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = _list(client, acc.token, **params)
        seen.extend(r["id"] for r in page["runs"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == newest_first
    first = _list(client, acc.token, limit=2, status="success")
    second = _list(client, acc.token, limit=2, status="success", cursor=first["nextCursor"])
    assert [r["id"] for r in first["runs"] + second["runs"]] == [
        r["id"] for r in reversed(runs) if r["status"] == "success"
    ]

    assert _list(client, other.token)["runs"][0]["deviceId"] == other_dev.id
    assert len(_list(client, other.token)["runs"]) == 1


def test_bad_list_parameters_are_422(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    bad = (
        {"cursor": "nonsense!"},
        {"status": "done"},
        {"limit": 0},
        {"from": "yesterday"},
        {"stauts": "failed"},
    )
    for params in bad:
        response = client.get("/api/v1/runs", params=params, headers=auth(acc.token))
        assert response.status_code == 422, params
        assert response.json()["errors"]
    typo = client.get("/api/v1/runs", params={"stauts": "failed"}, headers=auth(acc.token)).json()
    assert typo["errors"][0]["pointer"] == "query:stauts"
    assert "status" in typo["errors"][0]["hint"]
    assert client.get("/api/v1/runs/not-a-run", headers=auth(acc.token)).status_code == 404


def _captured_list_query(
    db: Db, filters: RunFilters, cursor: str | None, sort: RunSort = RunSort.CREATED_DESC
) -> tuple[str, Any]:
    """The SELECT that `list_runs` sends to the database, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with db.session_factory() as session:
            list_runs(session, "a", filters, cursor, 50, sort)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert len(sent) == 1, sent
    return sent[0]


def test_list_queries_use_the_run_indexes(db: Db) -> None:
    """Every filter of the real list query is an index range scan in newest-first order: no sort,
    no table scan (what keeps a page fast at a million runs)."""
    now = datetime.now(UTC)
    run = Run(created_at=now, started_at=now, duration_ms=10, id="x")
    day = RunFilters(since=now - timedelta(days=1))
    cases = {
        "ix_runs_account_created": (day, RunSort.CREATED_DESC),
        "ix_runs_account_status_created": (RunFilters(status=RunStatus.FAILED), RunSort.CREATED_DESC),
        "ix_runs_account_workflow_created": (RunFilters(workflow_id="w"), RunSort.CREATED_DESC),
        "ix_runs_account_device_created": (RunFilters(device_id="d"), RunSort.CREATED_DESC),
        "ix_runs_account_trigger_created": (RunFilters(trigger="webhook"), RunSort.CREATED_DESC),
        "ix_runs_account_start": (day, RunSort.STARTED_DESC),
        "ix_runs_account_duration": (RunFilters(), RunSort.DURATION),
    }
    for index, (filters, sort) in cases.items():
        statement, parameters = _captured_list_query(db, filters, encode_cursor(run, sort), sort)
        with db.engine.connect() as conn:
            if db.kind == "postgresql":
                # The tables are tiny here, where a sequential scan is cheapest; forbid it so that
                # the plan shows what the planner does once there are many rows.
                conn.exec_driver_sql("SET enable_seqscan = off")
                plan = " ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
                assert "Sort" not in plan, plan
            else:
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
                plan = " ".join(str(row[-1]) for row in rows)
                assert "TEMP B-TREE" not in plan, plan
            assert index in plan, plan
