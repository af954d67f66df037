"""`triggeredBy`: who or what asked for each run — an API token by its id and name (never the token),
a person signed in to the dashboard by their email — on the run, the run page and the export."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import run_report
from tests.server.test_dashboard_support import sign_in


def test_runs_asked_for_with_a_token_name_it_and_the_dashboards_name_the_person(
    client: TestClient, db: Db
) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    made = client.post("/api/v1/account/tokens", json={"name": "ci nightly"}, headers=auth(account.token))
    assert made.status_code == 201, made.text
    ci_token, ci_id = made.json()["token"], made.json()["id"]
    by_token = f"token:{ci_id} (ci nightly)"

    api = client.post(
        f"/api/v1/workflows/{workflow.id}/runs", json={"deviceId": device.id}, headers=auth(ci_token)
    ).json()
    assert (api["trigger"], api["triggeredBy"]) == ("api", by_token)
    batch = client.post(
        f"/api/v1/workflows/{workflow.id}/batches", json={"deviceIds": [device.id]}, headers=auth(ci_token)
    )
    assert batch.status_code == 201, batch.text
    assert [run["triggeredBy"] for run in batch.json()["runs"]] == [by_token]

    # A retry asked with a token names that token too.
    assert client.post("/api/v1/devices/me/claim", headers=auth(device.token)).status_code == 200
    ended = run_report(api["id"], workflow, status="failed", steps=1, trigger="api")
    answer = client.post("/api/v1/runs.report", json={"runs": [ended]}, headers=auth(device.token))
    assert answer.json()["runs"][0]["result"] == "stored", answer.text
    retry = client.post(f"/api/v1/runs/{api['id']}/retry", headers=auth(ci_token)).json()
    assert (retry["trigger"], retry["triggeredBy"]) == ("retry", by_token)

    # Through the dashboard's session (no token sent): the person's email.
    csrf = sign_in(client, account.token)
    manual = client.post(
        f"/api/v1/workflows/{workflow.id}/runs", json={"deviceId": device.id}, headers={"X-CSRF-Token": csrf}
    )
    assert manual.status_code == 201, manual.text
    assert manual.json()["triggeredBy"] == account.email

    page = client.get(f"/runs/{api['id']}").text
    assert f'by <span class="triggered-by">{by_token}</span>' in page
    exported = json.loads(client.get("/api/v1/runs/export?days=30", headers=auth(account.token)).content)
    assert {run["id"]: run["triggeredBy"] for run in exported}[retry["id"]] == by_token
    csv_text = client.get("/api/v1/runs/export?days=30&format=csv", headers=auth(account.token)).text
    assert by_token in csv_text
    everything = json.dumps(exported) + csv_text + page
    assert ci_token not in everything  # the token itself is never shown
