"""Pausing and resuming a moving run: the server owns `paused`, the step gate tells the phone."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import run_report


def _report(client: TestClient, token: str, run: dict[str, object]) -> str:
    answer = client.post("/api/v1/runs.report", json={"runs": [run]}, headers=auth(token)).json()
    return str(answer["runs"][0]["result"])


def test_pause_holds_the_gate_keeps_reports_from_resuming_and_resume_or_cancel_end_it(
    client: TestClient, db: Db
) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    queued = client.post(
        f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id, "inputs": {}}, headers=auth(acc.token)
    ).json()
    run_id = queued["id"]
    refused = client.post(f"/api/v1/runs/{run_id}/pause", headers=auth(acc.token))
    assert refused.status_code == 409
    assert "has not started" in refused.json()["detail"]
    client.post("/api/v1/devices/me/claim", headers=auth(dev.token))
    assert _report(client, dev.token, run_report(run_id, wf, steps=1, trigger="api")) == "stored"

    paused = client.post(f"/api/v1/runs/{run_id}/pause", headers=auth(acc.token))
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    again = client.post(f"/api/v1/runs/{run_id}/pause", headers=auth(acc.token))
    assert again.json()["status"] == "paused"  # the same call again: the run as it is
    gate = client.post(f"/api/v1/devices/me/runs/{run_id}/gate", headers=auth(dev.token)).json()
    assert (gate["status"], gate["paused"], gate["cancelRequested"]) == ("paused", True, False)

    # the step that was in flight reaches the server: the trace grows, the run stays paused
    assert _report(client, dev.token, run_report(run_id, wf, steps=2, trigger="api")) == "stored"
    run = client.get(f"/api/v1/runs/{run_id}", headers=auth(acc.token)).json()
    assert (run["status"], len(run["trace"])) == ("paused", 2)
    # the device's own echo of `paused` changes nothing
    assert _report(client, dev.token, run_report(run_id, wf, status="paused", steps=2, trigger="api")) == (
        "unchanged"
    )
    listed = client.get("/api/v1/runs?status=paused", headers=auth(acc.token)).json()["runs"]
    assert [r["id"] for r in listed] == [run_id]

    resumed = client.post(f"/api/v1/runs/{run_id}/resume", headers=auth(acc.token))
    assert resumed.json()["status"] == "running"
    gate = client.post(f"/api/v1/devices/me/runs/{run_id}/gate", headers=auth(dev.token)).json()
    assert (gate["status"], gate["paused"]) == ("running", False)
    not_paused = client.post(f"/api/v1/runs/{run_id}/resume", headers=auth(acc.token))
    assert not_paused.json()["status"] == "running"

    # a paused run is cancelled: the gate says cancel (not pause), its device's cancelRunIds has it
    client.post(f"/api/v1/runs/{run_id}/pause", headers=auth(acc.token))
    cancelled = client.post(f"/api/v1/runs/{run_id}/cancel", headers=auth(acc.token)).json()
    assert (cancelled["status"], cancelled["cancelRequested"]) == ("paused", True)
    gate = client.post(f"/api/v1/devices/me/runs/{run_id}/gate", headers=auth(dev.token)).json()
    assert (gate["paused"], gate["cancelRequested"]) == (False, True)
    beat = client.post("/api/v1/devices/me/heartbeat", json={}, headers=auth(dev.token)).json()
    assert beat["cancelRunIds"] == [run_id]
    no_resume = client.post(f"/api/v1/runs/{run_id}/resume", headers=auth(acc.token))
    assert no_resume.status_code == 409
    assert "being cancelled" in no_resume.json()["detail"]
    ended = run_report(run_id, wf, status="cancelled", steps=2, trigger="api")
    assert _report(client, dev.token, ended) == "stored"
    final = client.get(f"/api/v1/runs/{run_id}", headers=auth(acc.token)).json()
    assert final["status"] == "cancelled"
    late = client.post(f"/api/v1/runs/{run_id}/pause", headers=auth(acc.token))
    assert late.status_code == 409
    assert "already ended cancelled" in late.json()["detail"]


def test_a_device_reporting_paused_by_itself_is_stored_running(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    run = client.post(
        f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id, "inputs": {}}, headers=auth(acc.token)
    ).json()
    client.post("/api/v1/devices/me/claim", headers=auth(dev.token))
    report = run_report(run["id"], wf, status="paused", steps=3, trigger="api")
    assert _report(client, dev.token, report) == "stored"
    stored = client.get(f"/api/v1/runs/{run['id']}", headers=auth(acc.token)).json()
    assert (stored["status"], len(stored["trace"])) == ("running", 3)
