"""The step gate's announcement of the step about to start (`run.step`): written for a moving run of the
calling device only, once, with the wake-up of the run's watchers (on PostgreSQL by the gate's read)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.runs.models import RunEvent
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import SseReader, new_run_id, run_report, serve_in_thread


def _steps(db: Db, run_id: str) -> list[dict[str, Any]]:
    with db.session_factory() as session:
        payloads = session.scalars(
            select(RunEvent.payload)
            .where(RunEvent.run_id == run_id, RunEvent.event == "run.step")
            .order_by(RunEvent.id)
        ).all()
    return [p if isinstance(p, dict) else json.loads(p) for p in payloads]


def test_a_step_is_announced_only_for_a_moving_run_of_the_device(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev, stranger = create_device(db, acc.id), create_device(db, acc.id, serial="OTHER")
    wf = create_workflow(db, acc.id)
    run_id = new_run_id()
    stored = client.post(
        "/api/v1/runs.report", json={"runs": [run_report(run_id, wf, steps=1)]}, headers=auth(dev.token)
    )
    assert stored.json()["runs"][0]["result"] == "stored", stored.text
    gate = f"/api/v1/devices/me/runs/{run_id.upper()}/gate"

    answer = client.post(gate, json={"seq": 2, "nodeId": "n2"}, headers=auth(dev.token))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["paused"]) == ("running", False)
    (step,) = _steps(db, run_id)
    assert {k: step[k] for k in ("id", "seq", "nodeId")} == {"id": run_id, "seq": 2, "nodeId": "n2"}
    assert step["startedAt"]

    # Another device's gate of this run: 404, nothing announced.
    assert client.post(gate, json={"seq": 3, "nodeId": "n3"}, headers=auth(stranger.token)).status_code == 404
    # A gate that names no step announces none.
    assert client.post(gate, headers=auth(dev.token)).status_code == 200
    assert len(_steps(db, run_id)) == 1

    # Paused: the phone holds before the step, so it is not announced.
    assert client.post(f"/api/v1/runs/{run_id}/pause", headers=auth(acc.token)).status_code == 200
    held = client.post(gate, json={"seq": 3, "nodeId": "n3"}, headers=auth(dev.token))
    assert (held.json()["status"], held.json()["paused"]) == ("paused", True)
    assert len(_steps(db, run_id)) == 1

    assert client.post(f"/api/v1/runs/{run_id}/resume", headers=auth(acc.token)).status_code == 200
    assert client.post(gate, json={"seq": 3, "nodeId": "n3"}, headers=auth(dev.token)).status_code == 200
    assert [s["seq"] for s in _steps(db, run_id)] == [2, 3]

    # A cancel was asked: the step will not start.
    assert client.post(f"/api/v1/runs/{run_id}/cancel", headers=auth(acc.token)).status_code == 200
    stopped = client.post(gate, json={"seq": 4, "nodeId": "n4"}, headers=auth(dev.token))
    assert stopped.json()["cancelRequested"] is True
    assert [s["seq"] for s in _steps(db, run_id)] == [2, 3]


def test_a_step_announced_without_a_report_reaches_the_runs_watchers(app: FastAPI, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    run_id = new_run_id()
    with serve_in_thread(app) as base_url:
        stored = httpx.post(
            base_url + "/api/v1/runs.report",
            json={"runs": [run_report(run_id, wf, steps=1)]},
            headers=auth(dev.token),
        )
        assert stored.json()["runs"][0]["result"] == "stored", stored.text
        reader = SseReader(base_url, acc.token)
        try:
            reader.wait_subscribed()
            gate = f"{base_url}/api/v1/devices/me/runs/{run_id}/gate"
            assert httpx.post(gate, json={"seq": 2, "nodeId": "n2"}, headers=auth(dev.token)).is_success
            step = reader.next(timeout_s=5)
            assert step["event"] == "run.step"
            assert json.loads(step["data"])["seq"] == 2
        finally:
            reader.close()
