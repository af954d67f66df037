"""The engine's execution log through the server: sent with a final runs.report, validated with bounds,
stored, served by GET /api/v1/runs/{id}/log, shown on the run page and in the JSON export (both databases)."""

from __future__ import annotations

import json
import random
import string
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from interpreter.appmodel import sample_apps
from interpreter.clock import VirtualClock
from interpreter.engine import run_workflow
from interpreter.simulator import SimulatedDevice
from server.db import utcnow
from server.runs.models import RunLogRow
from server.runs.schemas import MAX_LOG_VALUES_CHARS, _surely_within
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report
from tests.server.test_dashboard_support import sign_in

BRANCHING = {
    "schemaVersion": 1,
    "name": "Count",
    "start": "init",
    "nodes": [
        {"id": "init", "kind": "control.setVar", "params": {"name": "n", "value": 1}, "next": "check"},
        {
            "id": "check",
            "kind": "control.if",
            "params": {"expr": "vars.n < 3"},
            "next": {"true": "more", "false": "done"},
        },
        {"id": "more", "kind": "control.setVar", "params": {"name": "n", "value": 5}, "next": "check"},
        {"id": "done", "kind": "control.setVar", "params": {"name": "result", "value": "big"}},
    ],
}


def engine_run(run_id: str) -> dict[str, Any]:
    """The run JSON the engine makes for BRANCHING (trace and log), as a bridge sends it."""
    clock = VirtualClock(start=utcnow() - timedelta(minutes=5))
    result = run_workflow(BRANCHING, SimulatedDevice(sample_apps(), clock), clock=clock, run_id=run_id)
    data = result.to_json()
    data.pop("inputs", None)
    return data


def post(client: TestClient, token: str, *runs: dict[str, Any]) -> Any:
    return client.post("/api/v1/runs.report", json={"runs": list(runs)}, headers=auth(token))


def test_a_final_report_carries_the_engines_log_which_the_api_the_page_and_the_export_show(
    client: TestClient, db: Db
) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id, definition=BRANCHING)
    run_id = new_run_id()
    run = engine_run(run_id)
    assert run["status"] == "success"
    # A progress report first (no log, as the bridge sends them), then the final one with the log.
    progress = run_report(run_id, workflow, status="running", trace=run["trace"][:2])
    assert post(client, device.token, progress).json()["runs"][0]["result"] == "stored"
    final = {**run_report(run_id, workflow, status="success"), **run}
    answer = post(client, device.token, final)
    assert answer.status_code == 200, answer.text
    assert answer.json()["runs"][0]["result"] == "stored"

    got = client.get(f"/api/v1/runs/{run_id}/log", headers=auth(account.token)).json()
    assert got["source"] == "engine"
    assert got["entries"] == run["log"]
    assert [(v["name"], v["value"], v["nodeId"]) for v in got["variables"]] == [
        ("n", 1, "init"),
        ("n", 5, "more"),
        ("result", "big", "done"),
    ]
    conditions = [e["values"]["value"] for e in got["entries"] if e["kind"] == "condition"]
    assert conditions == [True, False]

    # Sent again (the outbox retries): unchanged, and the log is still the one stored.
    assert post(client, device.token, final).json()["runs"][0]["result"] == "unchanged"
    with db.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(RunLogRow)) == 1

    sign_in(client, account.token)
    page = client.get(f"/runs/{run_id}").text
    assert (
        "The engine&#39;s decisions as it made them" in page
        or "The engine's decisions as it made them" in page
    )
    assert "vars.n &lt; 3 was true" in page
    assert "Variables as they changed" in page
    assert "<code>vars.result</code></td><td><code>&#34;big&#34;</code>" in page or (
        '<code>vars.result</code></td><td><code>"big"</code>' in page
    )

    exported = json.loads(client.get("/api/v1/runs/export?days=30", headers=auth(account.token)).content)
    (item,) = [r for r in exported if r["id"] == run_id]
    assert item["logSource"] == "engine"
    assert item["log"] == run["log"]
    assert item["trace"] == run["trace"]


def test_a_run_reported_without_a_log_gets_the_one_read_from_its_trace(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id, definition=BRANCHING)
    run_id = new_run_id()
    old_bridge = {k: v for k, v in engine_run(run_id).items() if k != "log"}
    final = {**run_report(run_id, workflow, status="success"), **old_bridge}
    assert post(client, device.token, final).json()["runs"][0]["result"] == "stored"
    got = client.get(f"/api/v1/runs/{run_id}/log", headers=auth(account.token)).json()
    assert got["source"] == "trace"
    assert got["entries"][-1]["kind"] == "end"
    assert all(entry["atMs"] is None for entry in got["entries"])
    exported = json.loads(client.get("/api/v1/runs/export?days=30", headers=auth(account.token)).content)
    assert exported[0]["logSource"] == "trace"
    assert exported[0]["log"] == got["entries"]


def entry(**fields: Any) -> dict[str, Any]:
    return {
        "seq": 1,
        "atMs": 0,
        "step": None,
        "nodeId": None,
        "kind": "start",
        "text": "t",
        "values": {},
    } | fields


def test_a_log_out_of_bounds_is_refused_with_a_pointer_and_the_batchs_other_runs_are_not_stored(
    client: TestClient, db: Db
) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    cases = {
        "values": [entry(values={"output": "x" * 9000})],
        "kind": [entry(kind="Not A Kind")],
        "text": [entry(text="y" * 2001)],
        "entries": [entry(seq=i) for i in range(1, 402)],
        "atMs": [entry(atMs=-1)],
        "extra": [entry(secret="no")],
    }
    for what, log in cases.items():
        body = run_report(new_run_id(), workflow, status="success", log=log)
        answer = post(client, device.token, body)
        assert answer.status_code == 422, (what, answer.text)
        pointers = [problem["pointer"] for problem in answer.json()["errors"]]
        assert any(pointer.startswith("/runs/0/log") for pointer in pointers), (what, pointers)
    with db.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(RunLogRow)) == 0
    # At the bounds, it is stored.
    coalesced = entry(kind="wait-poll", count=12, lastAtMs=1100, values={"output": "x" * 7000})
    fits = run_report(
        new_run_id(), workflow, status="success", log=[coalesced, *(entry(seq=i) for i in range(2, 401))]
    )
    assert post(client, device.token, fits).json()["runs"][0]["result"] == "stored"
    got = client.get(f"/api/v1/runs/{fits['id']}/log", headers=auth(account.token)).json()
    assert len(got["entries"]) == 400
    assert got["entries"][0]["count"] == 12
    assert got["entries"][0]["lastAtMs"] == 1100
    assert "count" not in got["entries"][1]


def test_the_size_check_skips_encoding_only_values_that_surely_fit() -> None:
    # `_surely_within` spares the JSON encoding of small flat values; it must never say "fits" of values
    # whose JSON is longer than the limit (escapes, long numbers and nested values included).
    rng = random.Random(7)
    pieces = [*string.printable, "é", "\x00", '"', "\\", "\u2028"]

    def value() -> Any:
        pick = rng.random()
        if pick < 0.4:
            return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 700)))
        if pick < 0.6:
            return rng.randint(-(10**29), 10**29)
        if pick < 0.75:
            return rng.uniform(-1e308, 1e308)
        if pick < 0.85:
            return rng.choice([True, False, None, float("nan"), float("inf")])
        return {"nested": [1, 2]}

    said_fits = 0
    for _ in range(3000):
        values = {"".join(rng.choice(pieces) for _ in range(rng.randint(1, 20))): value() for _ in range(6)}
        for limit in (100, 800, 8000):
            if _surely_within(values, limit):
                said_fits += 1
                assert len(json.dumps(values, ensure_ascii=False, default=str)) <= limit, values
    assert said_fits > 300  # it does say so, of the smaller ones
    assert _surely_within({"output": "ok", "n": 3}, MAX_LOG_VALUES_CHARS)
    assert not _surely_within({"output": "x" * 2000}, MAX_LOG_VALUES_CHARS)
