"""A workflow's `frames` setting (every | failures | off): validated by the schema, and sent to the
bridge with each claimed run (`every` when the workflow does not say)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.factories import Db, auth, create_account, create_device, create_workflow, sample_definition
from tests.server.runs_support import run_report


def _claim_frames(
    client: TestClient, account_token: str, device_token: str, device_id: str, wf_id: str
) -> str:
    created = client.post(
        f"/api/v1/workflows/{wf_id}/runs",
        json={"deviceId": device_id, "inputs": {}},
        headers=auth(account_token),
    )
    assert created.status_code == 201, created.text
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(device_token))
    assert claimed.status_code == 200, claimed.text
    return str(claimed.json()["frames"])


def test_the_claim_carries_the_workflows_frames_setting(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    unset = create_workflow(db, acc.id)
    quiet = create_workflow(db, acc.id, definition=sample_definition(frames="off"))
    assert _claim_frames(client, acc.token, dev.token, dev.id, unset.id) == "every"
    assert _claim_frames(client, acc.token, dev.token, dev.id, quiet.id) == "off"


def test_a_frames_setting_that_is_no_mode_is_refused_with_its_pointer(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    for good in ("every", "failures", "off"):
        answer = client.post(
            "/api/v1/workflows/validate",
            json={"definition": sample_definition(frames=good)},
            headers=auth(acc.token),
        )
        assert answer.json()["errors"] == [], answer.text
    bad = client.post(
        "/api/v1/workflows/validate",
        json={"definition": sample_definition(frames="sometimes")},
        headers=auth(acc.token),
    ).json()["errors"]
    assert [e["pointer"] for e in bad] == ["/frames"]
    assert "every" in bad[0]["message"] + bad[0]["hint"]


def test_a_run_triggered_with_frames_uses_it_and_its_retry_keeps_it(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id, definition=sample_definition(frames="failures"))
    bad = client.post(
        f"/api/v1/workflows/{wf.id}/runs",
        json={"deviceId": dev.id, "inputs": {}, "frames": "sometimes"},
        headers=auth(acc.token),
    )
    assert bad.status_code == 422
    assert [e["pointer"] for e in bad.json()["errors"]] == ["/frames"]
    created = client.post(
        f"/api/v1/workflows/{wf.id}/runs",
        json={"deviceId": dev.id, "inputs": {}, "frames": "every"},
        headers=auth(acc.token),
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).json()
    assert (claimed["run"]["id"], claimed["frames"]) == (run_id, "every")  # the run's, over the workflow's
    ended = run_report(run_id, wf, status="failed", steps=1, trigger="api")
    client.post("/api/v1/runs.report", json={"runs": [ended]}, headers=auth(dev.token))
    retry = client.post(f"/api/v1/runs/{run_id}/retry", headers=auth(acc.token))
    assert retry.status_code == 201, retry.text
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).json()
    assert (claimed["run"]["id"], claimed["frames"]) == (retry.json()["id"], "every")
