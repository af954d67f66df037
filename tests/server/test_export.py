"""GET /api/v1/runs/export: a streamed JSON array of runs with traces, within the plan's window."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi.testclient import TestClient

from server.db import utcnow
from server.runs.export import BATCH_SIZE
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report, trace_event


def test_export_window_traces_and_batches(client: TestClient, db: Db) -> None:
    acc, other = create_account(db), create_account(db, plan="pro")
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    now = utcnow()
    old = run_report(new_run_id(), wf, status="success", steps=2, started_at=now - timedelta(days=12))
    client.post("/api/v1/runs.report", json={"runs": [old]}, headers=auth(dev.token))
    # more runs than one export batch, so the keyset continues across batches
    expected = []
    for start in range(0, BATCH_SIZE + 20, 50):
        batch = [
            run_report(
                new_run_id(), wf, status="success", steps=1, started_at=now - timedelta(minutes=start + i + 5)
            )
            for i in range(min(50, BATCH_SIZE + 20 - start))
        ]
        answer = client.post("/api/v1/runs.report", json={"runs": batch}, headers=auth(dev.token))
        assert answer.status_code == 200, answer.text
        expected.extend(batch)

    with client.stream(
        "GET", "/api/v1/runs/export", params={"days": 10}, headers=auth(acc.token)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        body = b"".join(response.iter_bytes())
    runs = json.loads(body)
    assert len(runs) == len(expected)
    assert [r["id"] for r in runs] == [r["id"] for r in reversed(expected)]  # oldest first
    assert runs[0]["trace"] == [trace_event(1)]
    assert runs[0]["status"] == "success"

    everything = json.loads(client.get("/api/v1/runs/export?days=30", headers=auth(acc.token)).content)
    assert everything[0]["id"] == old["id"]
    assert len(everything[0]["trace"]) == 2
    assert client.get("/api/v1/runs/export?days=30", headers=auth(other.token)).json() == []


def test_export_window_is_capped_by_plan(client: TestClient, db: Db) -> None:
    free, pro, team = create_account(db), create_account(db, plan="pro"), create_account(db, plan="team")
    refused = client.get("/api/v1/runs/export?days=31", headers=auth(free.token))
    assert refused.status_code == 422
    problem = refused.json()
    assert "at most 30 days" in problem["errors"][0]["message"]
    assert problem["errors"][0]["pointer"] == "query:days"
    assert client.get("/api/v1/runs/export?days=90", headers=auth(pro.token)).status_code == 200
    assert client.get("/api/v1/runs/export?days=91", headers=auth(team.token)).status_code == 422
    assert client.get("/api/v1/runs/export?days=0", headers=auth(pro.token)).status_code == 422
    assert client.get("/api/v1/runs/export?days=5").status_code == 401
