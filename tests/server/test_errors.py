from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.factories import Db, auth, create_account

PROBLEM = "application/problem+json"


def test_malformed_json_is_a_400_problem(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    r = client.post(
        "/api/v1/workflows",
        content=b'{"name": "x", "definition": {',
        headers={**auth(acc.token), "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "malformed JSON" in r.json()["detail"]


def test_wrong_types_and_unknown_fields_are_located(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    r = client.post(
        "/api/v1/workflows", json={"name": 5, "definition": [], "colour": "red"}, headers=auth(acc.token)
    )
    assert r.status_code == 422
    body = r.json()
    assert body["title"] == "Validation failed"
    by_pointer = {e["pointer"]: e for e in body["errors"]}
    assert set(by_pointer) == {"/name", "/definition", "/colour"}
    assert by_pointer["/colour"]["hint"].startswith("remove this field")
    assert "/name" in body["detail"] or "problems" in body["detail"]


def test_query_and_path_problems_are_located(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    r = client.patch("/api/v1/account", json={"runRetentionDays": "many"}, headers=auth(acc.token))
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"] == "/runRetentionDays"


def test_oversized_body_is_413(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    big = {"name": "x", "definition": {"pad": "x" * 70_000}}
    r = client.post("/api/v1/workflows", json=big, headers=auth(acc.token))
    assert r.status_code == 413
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "larger than" in r.json()["detail"]


def test_oversized_streamed_body_without_length_is_413(client: TestClient, db: Db) -> None:
    acc = create_account(db)

    def chunks() -> object:
        for _ in range(20):
            yield b"x" * 8192

    r = client.post(
        "/api/v1/workflows",
        content=chunks(),  # type: ignore[arg-type]
        headers={**auth(acc.token), "Content-Type": "application/json"},
    )
    assert r.status_code == 413


def test_unknown_path_and_method_are_problems(client: TestClient) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "/openapi.json" in r.json()["detail"]
    r = client.put("/api/v1/account")
    assert r.status_code == 405
    assert r.headers["content-type"].startswith(PROBLEM)


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert made
    assert made != "bad id with spaces"


def test_unknown_query_parameters_are_refused(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    r = client.get("/api/v1/workflows?stauts=failed", headers=auth(acc.token))
    assert r.status_code == 422
    (problem,) = r.json()["errors"]
    assert problem["pointer"] == "query:stauts"
    assert "no query parameters" in problem["hint"]


def test_a_true_is_not_a_number_of_days(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    r = client.patch("/api/v1/account", json={"runRetentionDays": True}, headers=auth(acc.token))
    assert r.status_code == 422
