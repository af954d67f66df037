"""A workflow's `frames` setting (every | failures | off): validated by the schema, and sent to the
bridge with each claimed run (`every` when the workflow does not say)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.factories import Db, auth, create_account, create_device, create_workflow, sample_definition


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
