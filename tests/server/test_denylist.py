from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.factories import Db, auth, create_account, sample_definition


def _launching(package: str) -> dict[str, object]:
    return sample_definition(
        targetPackages=[package],
        nodes=[{"id": "open", "kind": "action.launchApp", "params": {"package": package}}],
    )


def test_global_and_account_entries(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    added = client.post("/api/v1/denylist", json={"pattern": "com.casino.*"}, headers=auth(acc.token))
    assert added.status_code == 201, added.text
    body = client.get("/api/v1/denylist", headers=auth(acc.token)).json()
    assert body["globalEntries"] == ["com.bank.*", "com.evil.app"]
    assert [e["pattern"] for e in body["accountEntries"]] == ["com.casino.*"]
    again = client.post("/api/v1/denylist", json={"pattern": "com.casino.*"}, headers=auth(acc.token))
    assert again.status_code == 409
    bad = client.post("/api/v1/denylist", json={"pattern": "com bank"}, headers=auth(acc.token))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/pattern"


def test_account_entry_refuses_workflows_of_that_account_only(client: TestClient, db: Db) -> None:
    alice, bob = create_account(db), create_account(db)
    entry = client.post(
        "/api/v1/denylist", json={"pattern": "com.example.shop"}, headers=auth(alice.token)
    ).json()
    body = {"name": "shop", "definition": _launching("com.example.shop")}
    refused = client.post("/api/v1/workflows", json=body, headers=auth(alice.token))
    assert refused.status_code == 422
    assert any("denylist" in e["message"] for e in refused.json()["errors"])
    assert client.post("/api/v1/workflows", json=body, headers=auth(bob.token)).status_code == 201
    # bob cannot remove alice's entry; alice can
    assert client.delete(f"/api/v1/denylist/{entry['id']}", headers=auth(bob.token)).status_code == 404
    assert client.delete(f"/api/v1/denylist/{entry['id']}", headers=auth(alice.token)).status_code == 204
    assert client.post("/api/v1/workflows", json=body, headers=auth(alice.token)).status_code == 201


def test_global_entry_refuses_every_account(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    r = client.post(
        "/api/v1/workflows",
        json={"name": "bank", "definition": _launching("com.bank.app")},
        headers=auth(acc.token),
    )
    assert r.status_code == 422
    assert any("com.bank.app" in e["message"] for e in r.json()["errors"])
