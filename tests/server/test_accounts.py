from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.factories import Db, auth, create_account


def test_account_shows_plan_and_retention(client: TestClient, db: Db) -> None:
    acc = create_account(db, plan="pro")
    body = client.get("/api/v1/account", headers=auth(acc.token)).json()
    assert body["email"] == acc.email
    assert body["plan"] == "pro"
    assert body["runRetentionDays"] == 30
    assert body["retentionCapDays"] == 180
    assert body["exportWindowDays"] == 90


def test_retention_within_cap_is_saved(client: TestClient, db: Db) -> None:
    acc = create_account(db, plan="team")
    r = client.patch("/api/v1/account", json={"runRetentionDays": 365}, headers=auth(acc.token))
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/account", headers=auth(acc.token)).json()["runRetentionDays"] == 365


def test_retention_above_cap_is_422_naming_the_cap(client: TestClient, db: Db) -> None:
    acc = create_account(db, plan="free")
    r = client.patch("/api/v1/account", json={"runRetentionDays": 31}, headers=auth(acc.token))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    (problem,) = r.json()["errors"]
    assert problem["pointer"] == "/runRetentionDays"
    assert "cap of 30 days" in problem["message"]
    assert client.get("/api/v1/account", headers=auth(acc.token)).json()["runRetentionDays"] == 30


def test_token_is_shown_once_and_works_until_revoked(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    created = client.post("/api/v1/account/tokens", json={"name": "ci"}, headers=auth(acc.token))
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("pf_acc_")
    listed = client.get("/api/v1/account/tokens", headers=auth(token)).json()
    assert {t["name"] for t in listed} == {"first token", "ci"}
    assert all("token" not in t for t in listed)
    r = client.delete(f"/api/v1/account/tokens/{created.json()['id']}", headers=auth(acc.token))
    assert r.status_code == 204
    refused = client.get("/api/v1/account", headers=auth(token))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert client.get("/api/v1/account", headers=auth(acc.token)).status_code == 200


def test_tokens_are_stored_hashed(db: Db) -> None:
    from sqlalchemy import select

    from server.accounts.models import ApiToken

    acc = create_account(db)
    with db.session_factory() as session:
        hashes = session.scalars(select(ApiToken.token_hash)).all()
    assert acc.token not in hashes
    assert all(len(h) == 64 for h in hashes)


def test_another_accounts_token_is_404(client: TestClient, db: Db) -> None:
    alice, bob = create_account(db), create_account(db)
    bobs = client.get("/api/v1/account/tokens", headers=auth(bob.token)).json()[0]["id"]
    r = client.delete(f"/api/v1/account/tokens/{bobs}", headers=auth(alice.token))
    assert r.status_code == 404
    assert client.get("/api/v1/account", headers=auth(bob.token)).status_code == 200


def test_missing_and_wrong_tokens_say_how_to_get_one(client: TestClient, db: Db) -> None:
    for headers in ({}, auth("pf_acc_nope"), auth("garbage"), {"Authorization": "Basic abc"}):
        r = client.get("/api/v1/account", headers=headers)
        assert r.status_code == 401, headers
        assert "create-account" in r.json()["detail"]
