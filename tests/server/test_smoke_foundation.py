from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.factories import Db, auth, create_account, create_device, create_workflow


def test_account_read_and_factories(client: TestClient, db: Db) -> None:
    acc = create_account(db, plan="pro")
    create_device(db, acc.id)
    create_workflow(db, acc.id)
    r = client.get("/api/v1/account", headers=auth(acc.token))
    assert r.status_code == 200, r.text
    assert r.json()["plan"] == "pro"
    assert r.headers["x-request-id"]
    assert client.get("/api/v1/account").status_code == 401
    assert client.get("/healthz").json() == {"status": "ok"}
