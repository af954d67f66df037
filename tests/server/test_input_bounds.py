"""Input no endpoint can store or read back is refused at the door (422 with a pointer), on both databases:
NUL, lone surrogates, NaN, deep nesting, numbers and times outside what the columns and sums hold,
repeated or non-time query parameters, huge event ids; and what is stored stays readable."""

from __future__ import annotations

import base64
import json
import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.db import utcnow
from server.runs.models import Run
from server.runs.retention import purge_expired_runs
from server.schemas import MAX_DURATION_MS
from tests.server.factories import Db, auth, create_account, create_device, create_workflow, sample_definition
from tests.server.runs_support import SseReader, new_run_id, run_report, serve_in_thread
from tests.server.test_dashboard_support import form_csrf


def _post_report(client: TestClient, token: str, *runs: dict[str, Any]) -> httpx.Response:
    return client.post("/api/v1/runs.report", json={"runs": list(runs)}, headers=auth(token))


def _raw_report(client: TestClient, token: str, body: str) -> httpx.Response:
    return client.post(
        "/api/v1/runs.report",
        content=body.encode("utf-8"),
        headers={**auth(token), "Content-Type": "application/json"},
    )


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": value}
    return value


def test_reports_that_cannot_be_stored_are_422_with_a_pointer(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)

    def refused(fields: dict[str, Any], pointer_part: str) -> None:
        good = run_report(new_run_id(), wf, steps=1)
        bad = {**run_report(new_run_id(), wf, status="success", steps=2), **fields}
        response = _post_report(client, dev.token, good, bad)
        assert response.status_code == 422, (fields, response.text)
        pointers = [e["pointer"] for e in response.json()["errors"]]
        assert any(p.startswith("/runs/1/") and pointer_part in p for p in pointers), pointers

    refused({"durationMs": 10**20}, "durationMs")
    refused({"durationMs": 2**62}, "durationMs")
    refused({"nSteps": 2**63}, "nSteps")
    refused({"nSteps": 2**31}, "nSteps")
    refused({"nFailed": -1}, "nFailed")
    refused({"startedAt": "0001-01-01T00:00:00+01:00"}, "startedAt")
    refused({"endedAt": "9999-12-31T23:00:00-01:00"}, "endedAt")
    refused({"startedAt": 1_700_000_000}, "startedAt")
    refused({"errorMessage": "broke\x00here"}, "errorMessage")
    refused({"inputs": {"k": "nul\x00"}}, "inputs/k")
    refused({"inputs": {"nul\x00key": 1}}, "inputs")
    refused({"inputs": _nested(256)}, "inputs/a/a")
    event = {**run_report(new_run_id(), wf, steps=1)["trace"][0], "startedAt": "0001-01-01T00:00:00+01:00"}
    refused({"trace": [event]}, "trace/0")
    refused({"trace": [{**event, "startedAt": "2026-01-01T00:00:00Z", "durationMs": 2**62}]}, "trace/0")

    # escapes Python's json takes but UTF-8, PostgreSQL and JSON itself do not
    rid = new_run_id()
    template = json.dumps({"runs": [{**run_report(rid, wf, steps=0), "inputs": "INPUTS"}]})
    for bad_inputs, where in (
        ('{"k": "\\ud800"}', "/runs/0/inputs/k"),
        ('{"k": "a\\u0000b"}', "/runs/0/inputs/k"),
        ('{"k": NaN}', "/runs/0/inputs/k"),
        ('{"k": [Infinity]}', "/runs/0/inputs/k/0"),
        ('{"k": 1e400}', "/runs/0/inputs/k"),
        ('{"k": 92233720368547758070}', "/runs/0/inputs/k"),
        ('{"k": ' + "7" * 5000 + "}", "/runs/0/inputs/k"),
    ):
        response = _raw_report(client, dev.token, template.replace('"INPUTS"', bad_inputs))
        assert response.status_code == 422, (bad_inputs, response.text)
        assert response.json()["errors"][0]["pointer"] == where
    # a valid surrogate pair is a character like any other
    ok = _raw_report(client, dev.token, template.replace('"INPUTS"', '{"k": "\\ud83d\\ude00"}'))
    assert ok.status_code == 200, ok.text

    # what was stored reads back: the list, the run, the stats, the dashboard's run page
    listed = client.get("/api/v1/runs", headers=auth(acc.token))
    assert listed.status_code == 200
    assert [r["inputs"] for r in listed.json()["runs"]] == [{"k": "😀"}]
    assert client.get(f"/api/v1/runs/{rid}", headers=auth(acc.token)).status_code == 200


def test_durations_at_the_bound_sum_without_overflow(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    runs = [
        {**run_report(new_run_id(), wf, status="success", steps=1), "durationMs": MAX_DURATION_MS}
        for _ in range(3)
    ]
    assert _post_report(client, dev.token, *runs).status_code == 200
    stats = client.get("/api/v1/stats", headers=auth(acc.token))
    assert stats.status_code == 200, stats.text
    assert stats.json()["averageDurationMs"] == MAX_DURATION_MS


def test_definitions_and_names_refuse_unstorable_text(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    body = '{"name": "x", "definition": %s}'
    definition = sample_definition()
    text = json.dumps(definition).replace('"name": ', '"name": "\\ud800", "x": ', 1)
    response = client.post(
        "/api/v1/workflows",
        content=(body % text).encode(),
        headers={**auth(acc.token), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"].startswith("/definition/")
    named = client.post(
        "/api/v1/workflows", json={"name": "a\x00b", "definition": definition}, headers=auth(acc.token)
    )
    assert named.status_code == 422
    assert named.json()["errors"][0]["pointer"] == "/name"
    # a NUL in the path or the query never reaches the database
    assert client.get("/api/v1/workflows/abc%00def", headers=auth(acc.token)).status_code == 422
    assert client.get("/api/v1/runs?q=a%00b", headers=auth(acc.token)).status_code == 422
    assert client.get("/api/v1/runs?q=%ED%A0%80", headers=auth(acc.token)).status_code == 422
    assert client.get("/api/v1/workflows", headers=auth(acc.token)).json() is not None


@pytest.mark.parametrize(
    "query",
    [
        "from=0001-01-01T00:00:00%2B01:00",
        "to=9999-12-31T23:59:59-01:00",
        "to=-2.2e-313",
        "from=1700000000",
        "workflowId=a&workflowId=b",
        "limit=5&limit=6",
    ],
)
def test_run_list_query_out_of_range_or_repeated_is_422(client: TestClient, db: Db, query: str) -> None:
    acc = create_account(db)
    response = client.get(f"/api/v1/runs?{query}", headers=auth(acc.token))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"].startswith("query:")


def test_a_cursor_cannot_carry_an_out_of_range_time(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    for sort, value in (("-createdAt", "0001-01-01T00:00:00+01:00"), ("-durationMs", 2**70)):
        cursor = base64.urlsafe_b64encode(json.dumps([sort, value, "x"]).encode()).decode().rstrip("=")
        response = client.get(f"/api/v1/runs?sort={sort}&cursor={cursor}", headers=auth(acc.token))
        assert response.status_code == 422, response.text


def test_a_huge_event_id_is_422_not_a_dead_stream(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    huge = "1" * 25
    response = client.get("/api/v1/events", headers={**auth(acc.token), "Last-Event-ID": huge})
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "header:Last-Event-ID"


def test_revoking_a_token_closes_its_event_streams(app: FastAPI, db: Db) -> None:
    # One server for the app (not also the test client's): two would run its lifespan twice, on two
    # event loops, and the event fan-out of one would be used from the other's loop.
    app.state.sse_ping_s = 0.2
    acc = create_account(db)
    with serve_in_thread(app) as base_url:
        tokens_url = f"{base_url}/api/v1/account/tokens"
        made = httpx.post(tokens_url, json={"name": "watcher"}, headers=auth(acc.token))
        assert made.status_code == 201, made.text
        second = made.json()
        reader = SseReader(base_url, second["token"])
        try:
            reader.wait_subscribed()
            url = f"{base_url}/api/v1/account/tokens/{second['id']}"
            revoked = httpx.delete(url, headers=auth(acc.token))
            assert revoked.status_code == 204
            reader._thread.join(timeout=10)
            assert not reader._thread.is_alive(), "the stream of a revoked token is still open"
        finally:
            reader.close()


def test_a_run_from_a_phone_with_a_wrong_clock_survives_retention(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    rid = new_run_id()
    report = run_report(rid, wf, status="success", steps=1)
    report["startedAt"], report["endedAt"] = "1970-01-01T00:00:00.000Z", "1970-01-01T00:00:02.000Z"
    answer = _post_report(client, dev.token, report)
    assert answer.json()["runs"][0]["result"] == "stored"
    purge_expired_runs(db.session_factory)
    purge_expired_runs(db.session_factory, now=utcnow() + timedelta(days=1))
    with db.session_factory() as session:
        assert session.scalars(select(Run.id)).all() == [rid]


def test_signing_out_closes_the_dashboards_event_stream(app: FastAPI, db: Db) -> None:
    app.state.sse_ping_s = 0.2
    acc = create_account(db)
    with serve_in_thread(app) as base_url, httpx.Client(base_url=base_url) as browser:
        page = browser.get("/signin")
        signed_in = browser.post(
            "/signin", data={"token": acc.token, "csrf_token": form_csrf(page.text)}, follow_redirects=False
        )
        assert signed_in.status_code == 303
        csrf = form_csrf(browser.get("/settings").text)
        ended = threading.Event()

        def follow() -> None:
            with httpx.Client(base_url=base_url, cookies=browser.cookies, timeout=30) as stream_client:
                with stream_client.stream("GET", "/dashboard/events") as stream:
                    assert stream.status_code == 200
                    for _ in stream.iter_lines():
                        pass
            ended.set()

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        assert not ended.wait(1.0), "the stream ended before signing out"
        assert browser.post("/signout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
        assert ended.wait(10), "the stream of a signed-out session is still open"
