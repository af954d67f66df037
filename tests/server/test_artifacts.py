"""Run artifacts: a device uploads a file of its run; the account lists and reads it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report


def test_upload_list_and_read(client: TestClient, db: Db) -> None:
    acc, other = create_account(db), create_account(db)
    dev, other_dev = create_device(db, acc.id), create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    client.post("/api/v1/runs.report", json={"runs": [run_report(rid, wf, steps=1)]}, headers=auth(dev.token))
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))

    def upload(token: str, run_id: str = rid) -> int:
        response = client.post(
            f"/api/v1/runs/{run_id}/artifacts",
            files={"file": ("failure-1.png", png, "image/png")},
            data={"name": "failure-1.png"},
            headers=auth(token),
        )
        return response.status_code

    assert upload(dev.token) == 201
    assert upload(dev.token) == 201  # the same name again changes nothing
    assert upload(other_dev.token) == 404  # not this device's run
    assert upload(dev.token, new_run_id()) == 404  # not reported yet

    listed = client.get(f"/api/v1/runs/{rid}/artifacts", headers=auth(acc.token)).json()
    assert [(a["name"], a["contentType"], a["size"]) for a in listed] == [
        ("failure-1.png", "image/png", len(png))
    ]
    body = client.get(f"/api/v1/runs/{rid}/artifacts/failure-1.png", headers=auth(acc.token))
    assert body.status_code == 200
    assert body.content == png
    assert body.headers["content-type"] == "image/png"
    assert client.get(f"/api/v1/runs/{rid}/artifacts/nope.png", headers=auth(acc.token)).status_code == 404
    assert client.get(f"/api/v1/runs/{rid}/artifacts", headers=auth(other.token)).status_code == 404
