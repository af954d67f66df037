"""Retrying runs: by hand (`POST /api/v1/runs/{id}/retry`) and automatically (a workflow's `autoRetry`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from server.db import utcnow
from server.runs.models import Run
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import run_report


def _report(client: TestClient, token: str, run: dict[str, object]) -> None:
    answer = client.post("/api/v1/runs.report", json={"runs": [run]}, headers=auth(token)).json()
    assert answer["runs"][0]["result"] == "stored", answer


def test_retry_queues_the_same_version_device_and_inputs_linked_both_ways(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    first = client.post(
        f"/api/v1/workflows/{wf.id}/runs",
        json={"deviceId": dev.id, "inputs": {"order": "A-7"}},
        headers=auth(acc.token),
    ).json()

    # a run that has not ended is not retried
    early = client.post(f"/api/v1/runs/{first['id']}/retry", headers=auth(acc.token))
    assert early.status_code == 409
    assert "has not ended (queued)" in early.json()["detail"]

    assert client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).status_code == 200
    _report(client, dev.token, run_report(first["id"], wf, status="failed", steps=1, trigger="api"))

    retried = client.post(f"/api/v1/runs/{first['id']}/retry", headers=auth(acc.token))
    assert retried.status_code == 201, retried.text
    again = retried.json()
    assert again["id"] != first["id"]
    assert (again["status"], again["trigger"]) == ("queued", "retry")
    assert again["triggeredBy"].startswith("token:")  # asked with the account's API token
    assert (again["workflowVersionId"], again["deviceId"], again["inputs"]) == (
        wf.version_id,
        dev.id,
        {"order": "A-7"},
    )
    assert (again["retryOf"], again["attempt"], again["notBefore"]) == (first["id"], 2, None)
    assert client.get(f"/api/v1/runs/{first['id']}", headers=auth(acc.token)).json()["retriedBy"] == [
        again["id"]
    ]
    listed = client.get("/api/v1/runs?trigger=retry", headers=auth(acc.token)).json()["runs"]
    assert [run["id"] for run in listed] == [again["id"]]

    # the device claims the retry like any queued run
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).json()
    assert claimed["run"]["id"] == again["id"]

    # another account's run is not found
    other = create_account(db)
    assert client.post(f"/api/v1/runs/{first['id']}/retry", headers=auth(other.token)).status_code == 404


def test_retry_refused_for_a_revoked_device(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    run = client.post(
        f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id, "inputs": {}}, headers=auth(acc.token)
    ).json()
    client.post(f"/api/v1/runs/{run['id']}/cancel", headers=auth(acc.token))
    assert client.post(f"/api/v1/devices/{dev.id}/revoke", headers=auth(acc.token)).status_code == 200
    refused = client.post(f"/api/v1/runs/{run['id']}/retry", headers=auth(acc.token))
    assert refused.status_code == 409
    assert "was revoked" in refused.json()["detail"]


def test_auto_retry_only_failed_and_timeout_up_to_max_with_backoff(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    patched = client.patch(
        f"/api/v1/workflows/{wf.id}", json={"autoRetry": {"max": 2, "backoffS": 60}}, headers=auth(acc.token)
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["autoRetry"] == {"max": 2, "backoffS": 60}

    def run_until(status: str) -> dict[str, object]:
        claimed = client.post("/api/v1/devices/me/claim", headers=auth(dev.token))
        assert claimed.status_code == 200, claimed.status_code
        run = claimed.json()["run"]
        _report(client, dev.token, run_report(run["id"], wf, status=status, steps=1, trigger=run["trigger"]))
        return client.get(f"/api/v1/runs/{run['id']}", headers=auth(acc.token)).json()

    def release_backoff() -> None:
        with db.session_factory.begin() as session:
            session.execute(update(Run).values(not_before=utcnow() - timedelta(seconds=1)))

    client.post(
        f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id, "inputs": {}}, headers=auth(acc.token)
    )
    first = run_until("failed")
    assert len(first["retriedBy"]) == 1
    retry = client.get(f"/api/v1/runs/{first['retriedBy'][0]}", headers=auth(acc.token)).json()
    assert (retry["trigger"], retry["triggeredBy"], retry["attempt"]) == ("retry", "auto-retry", 2)
    not_before = datetime.fromisoformat(str(retry["notBefore"]).replace("Z", "+00:00"))
    assert 50 < (not_before - utcnow()).total_seconds() <= 60  # the first backoff: 60 s from the failure
    # not claimable during its backoff
    assert client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).status_code == 204

    release_backoff()
    second = run_until("timeout")
    assert second["id"] == retry["id"]
    assert len(second["retriedBy"]) == 1
    third = client.get(f"/api/v1/runs/{second['retriedBy'][0]}", headers=auth(acc.token)).json()
    assert third["attempt"] == 3

    release_backoff()
    last = run_until("failed")
    assert last["retriedBy"] == []  # two retries used: no more

    # success and cancel are not retried
    client.post(
        f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id, "inputs": {}}, headers=auth(acc.token)
    )
    assert run_until("success")["retriedBy"] == []
    queued = client.post(
        f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id, "inputs": {}}, headers=auth(acc.token)
    ).json()
    client.post(f"/api/v1/runs/{queued['id']}/cancel", headers=auth(acc.token))
    assert client.get(f"/api/v1/runs/{queued['id']}", headers=auth(acc.token)).json()["retriedBy"] == []


def test_auto_retry_settings_are_checked(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    wf = create_workflow(db, acc.id)
    assert client.get(f"/api/v1/workflows/{wf.id}", headers=auth(acc.token)).json()["autoRetry"] == {
        "max": 0,
        "backoffS": 30,
    }
    bad = client.patch(f"/api/v1/workflows/{wf.id}", json={"autoRetry": {"max": 99}}, headers=auth(acc.token))
    assert bad.status_code == 422
