from __future__ import annotations

import logging
import socket
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url

from server.app import create_app
from server.settings import Settings
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


def test_a_browser_at_an_unknown_address_gets_a_page_with_the_way_in(client: TestClient) -> None:
    browser = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    r = client.get("/login?next=<b>", headers=browser)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "no page at <code>/login</code>" in r.text
    assert 'href="/signin"' in r.text
    # scripts and the API keep their problem+json, whatever they accept
    assert client.get("/login").headers["content-type"].startswith(PROBLEM)
    assert client.get("/api/v1/nothing-here", headers=browser).headers["content-type"].startswith(PROBLEM)


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


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assert_database_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.headers["retry-after"] == "2"
    body = r.json()
    assert body["title"] == "Service unavailable"
    assert "retry in 2 s" in body["detail"]
    assert "max_connections" in body["detail"]


def test_an_unreachable_database_is_a_503_that_says_retry(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if db_url.startswith("sqlite"):
        down = f"sqlite:///{tmp_path / 'no-such-folder' / 'phoneflow.db'}"
    else:
        down = make_url(db_url).set(port=_closed_port()).render_as_string(hide_password=False)
    settings = Settings(database_url=down, run_migrations=False, start_scheduler=False)
    phoneflow_log = logging.getLogger("phoneflow")  # does not propagate: listen on it directly
    phoneflow_log.addHandler(caplog.handler)
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            r = client.get("/api/v1/workflows", headers=auth("pf_acc_whatever"))
            health = client.get("/healthz")
    finally:
        phoneflow_log.removeHandler(caplog.handler)
    _assert_database_unavailable(r)
    _assert_database_unavailable(health)
    # The cause is in the operator's log, not in the answer.
    logged = [rec for rec in caplog.records if rec.getMessage().startswith("database unavailable")]
    assert logged
    assert logged[0].exc_info is not None
    assert "OperationalError" not in r.text
    assert make_url(down).database not in r.text


def test_a_full_pool_is_a_503_after_the_pool_timeout(db: Db, settings: Settings) -> None:
    acc = create_account(db)
    small = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_s": 0.2})
    app = create_app(small)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/api/v1/workflows", headers=auth(acc.token)).status_code == 200
        with app.state.engine.connect():  # the pool's only connection, held
            r = client.get("/api/v1/workflows", headers=auth(acc.token))
        _assert_database_unavailable(r)
        assert client.get("/api/v1/workflows", headers=auth(acc.token)).status_code == 200
