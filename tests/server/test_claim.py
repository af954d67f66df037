"""Triggering, claiming and cancelling runs: one claimer per run, even when many race."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.server.factories import Db, auth, create_account, create_device, create_workflow, sample_definition
from tests.server.runs_support import run_report, serve_in_thread


def _trigger(
    client: TestClient, token: str, workflow_id: str, device_id: str, **inputs: object
) -> httpx.Response:
    return client.post(
        f"/api/v1/workflows/{workflow_id}/runs",
        json={"deviceId": device_id, "inputs": inputs},
        headers=auth(token),
    )


def test_trigger_claim_report_and_cancel(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)

    assert client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).status_code == 204
    created = _trigger(client, acc.token, wf.id, dev.id, order="A-1")
    assert created.status_code == 201, created.text
    run = created.json()
    assert (run["status"], run["trigger"], run["workflowVersionId"]) == ("queued", "api", wf.version_id)
    assert run["inputs"] == {"order": "A-1"}

    claimed = client.post("/api/v1/devices/me/claim", headers=auth(dev.token))
    assert claimed.status_code == 200
    body = claimed.json()
    assert body["run"]["id"] == run["id"]
    assert body["run"]["status"] == "running"
    assert body["definition"] == sample_definition()
    assert client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).status_code == 204

    # the bridge reports the claimed run; cancelling a running run asks the device to stop it
    report = run_report(run["id"], wf, steps=1, trigger="api", inputs={"order": "A-1"})
    answer = client.post("/api/v1/runs.report", json={"runs": [report]}, headers=auth(dev.token)).json()
    assert answer["runs"][0]["result"] == "stored"
    cancelled = client.post(f"/api/v1/runs/{run['id']}/cancel", headers=auth(acc.token)).json()
    assert cancelled["status"] == "running"
    assert cancelled["cancelRequested"] is True
    final = run_report(run["id"], wf, status="cancelled", steps=1, trigger="api")
    client.post("/api/v1/runs.report", json={"runs": [final]}, headers=auth(dev.token))
    again = client.post(f"/api/v1/runs/{run['id']}/cancel", headers=auth(acc.token))
    assert again.status_code == 409
    assert "already ended cancelled" in again.json()["detail"]

    # a queued run is cancelled at once and is never handed out
    queued = _trigger(client, acc.token, wf.id, dev.id).json()
    assert (
        client.post(f"/api/v1/runs/{queued['id']}/cancel", headers=auth(acc.token)).json()["status"]
        == "cancelled"
    )
    assert client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).status_code == 204


def test_trigger_refusals(client: TestClient, db: Db) -> None:
    acc, other = create_account(db), create_account(db)
    dev, other_dev = create_device(db, acc.id), create_device(db, other.id)
    definition = sample_definition(
        inputs={"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}
    )
    wf = create_workflow(db, acc.id, definition=definition)
    draft = create_workflow(db, acc.id, publish=False)

    unpublished = _trigger(client, acc.token, draft.id, dev.id)
    assert unpublished.status_code == 409
    assert "no published version" in unpublished.json()["detail"]
    bad_inputs = _trigger(client, acc.token, wf.id, dev.id, order=5)
    assert bad_inputs.status_code == 422
    assert bad_inputs.json()["errors"][0]["pointer"] == "/inputs/order"
    missing = _trigger(client, acc.token, wf.id, dev.id)
    assert "'order' is a required property" in missing.json()["errors"][0]["message"]
    assert _trigger(client, acc.token, wf.id, other_dev.id, order="x").status_code == 404
    assert _trigger(client, other.token, wf.id, other_dev.id, order="x").status_code == 404
    assert _trigger(client, acc.token, wf.id, dev.id, order="x").status_code == 201
    assert client.post("/api/v1/devices/me/claim", headers=auth(other_dev.token)).status_code == 204
    # a required input with a default is met by the default, as the run's engine fills it in
    defaulted = create_workflow(
        db,
        acc.id,
        definition=sample_definition(
            inputs={
                "type": "object",
                "properties": {"order": {"type": "string", "default": "A-1"}},
                "required": ["order"],
            }
        ),
    )
    assert _trigger(client, acc.token, defaulted.id, dev.id).status_code == 201


def test_exactly_one_of_many_concurrent_claimers_gets_each_run(app: FastAPI, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    claimers = 8
    with serve_in_thread(app) as base_url, httpx.Client(base_url=base_url, timeout=60) as http:
        run_ids = []
        for _ in range(3):
            response = http.post(
                f"/api/v1/workflows/{wf.id}/runs",
                json={"deviceId": dev.id, "inputs": {}},
                headers=auth(acc.token),
            )
            run_ids.append(response.json()["id"])
        start = threading.Barrier(claimers)

        def claim() -> str | None:
            with httpx.Client(base_url=base_url, timeout=60) as own:
                start.wait()
                response = own.post("/api/v1/devices/me/claim", headers=auth(dev.token))
                assert response.status_code in (200, 204), response.text
                return response.json()["run"]["id"] if response.status_code == 200 else None

        with ThreadPoolExecutor(claimers) as pool:
            results = [f.result() for f in [pool.submit(claim) for _ in range(claimers)]]
    got = [r for r in results if r is not None]
    assert sorted(got) == sorted(run_ids)  # each run handed out exactly once
    assert results.count(None) == claimers - len(run_ids)


def test_cancel_requests_are_listed_for_the_device(client: TestClient, db: Db) -> None:
    from server.runs.service import cancel_requested_run_ids

    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    run = _trigger(client, acc.token, wf.id, dev.id).json()
    client.post("/api/v1/devices/me/claim", headers=auth(dev.token))
    with db.session_factory() as session:
        assert cancel_requested_run_ids(session, dev.id) == []
    client.post(f"/api/v1/runs/{run['id']}/cancel", headers=auth(acc.token))
    with db.session_factory() as session:
        assert cancel_requested_run_ids(session, dev.id) == [run["id"]]


def test_a_device_hears_of_a_cancel_in_its_heartbeat_and_its_report_answers(
    client: TestClient, db: Db
) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    other = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    run = _trigger(client, acc.token, wf.id, dev.id).json()
    client.post("/api/v1/devices/me/claim", headers=auth(dev.token))
    progress = run_report(run["id"], wf, steps=1, trigger="api")

    def heartbeat(token: str) -> list[str]:
        answer = client.post("/api/v1/devices/me/heartbeat", json={}, headers=auth(token))
        assert answer.status_code == 200, answer.text
        return list(answer.json()["cancelRunIds"])

    first = client.post("/api/v1/runs.report", json={"runs": [progress]}, headers=auth(dev.token)).json()
    assert first["runs"][0]["cancelRequested"] is False
    assert heartbeat(dev.token) == []

    client.post(f"/api/v1/runs/{run['id']}/cancel", headers=auth(acc.token))
    assert heartbeat(dev.token) == [run["id"]]
    assert heartbeat(other.token) == []  # only the device running it is told
    again = client.post("/api/v1/runs.report", json={"runs": [progress]}, headers=auth(dev.token)).json()
    assert again["runs"][0] == {
        "id": run["id"],
        "result": "unchanged",
        "reason": None,
        "cancelRequested": True,
    }

    final = run_report(run["id"], wf, status="cancelled", steps=1, trigger="api")
    ended = client.post("/api/v1/runs.report", json={"runs": [final]}, headers=auth(dev.token)).json()
    assert ended["runs"][0]["cancelRequested"] is False  # it has ended: nothing more to stop
    assert heartbeat(dev.token) == []
